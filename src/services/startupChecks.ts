/**
 * The start-up checks that need the machine but not a listening socket: files that must exist and
 * parse (filters file, TLS material, cli.working_dir) and listen addresses that must resolve to this
 * machine. main.ts runs them before building the app and for --check-config, so the check says OK
 * only for a configuration that then starts (short of a port taken in between). Each failure is a
 * ConfigError naming the key and where its value came from (env var, flag or file).
 */
import * as Effect from "effect/Effect"
import { createSocket, type Socket } from "node:dgram"
import { lookup } from "node:dns"
import { realpathSync, statSync } from "node:fs"
import { resolve } from "node:path"
import type { CliSection } from "../domain/config/cli.ts"
import { listenAddressesCollide } from "../domain/config/listenHost.ts"
import { ConfigError } from "../domain/errors.ts"
import type { LoadedConfig } from "./Config.ts"
import { hostError } from "./listenServer.ts"
import { loadFilterRules } from "./filters/filterRulesFile.ts"
import { checkTlsFiles } from "./tlsFiles.ts"

/** `cli.working_dir` (relative to `cwd`) as the real path of an existing directory, else a ConfigError naming the key. */
export const resolveCliWorkingDir = (cli: CliSection, cwd: string): Effect.Effect<string, ConfigError> =>
  Effect.flatMap(
    Effect.sync(() => {
      const dir = resolve(cwd, cli.working_dir)
      return statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true ? realpathSync(dir) : undefined
    }),
    (dir) =>
      dir !== undefined
        ? Effect.succeed(dir)
        : Effect.fail(new ConfigError({ key: "cli.working_dir", value: JSON.stringify(cli.working_dir), expected: "an existing directory", source: "cli" }))
  )

/** `cli.working_dir` must be an existing directory when the endpoint is on (CliRunner's start-up rule). */
export const checkCliWorkingDir = (cli: CliSection, cwd: string): Effect.Effect<void, ConfigError> =>
  cli.enabled ? Effect.asVoid(resolveCliWorkingDir(cli, cwd)) : Effect.void

/**
 * A listen host resolves (the lookup `net.Server.listen` does) to an address this machine can bind:
 * a UDP socket is bound to it on an ephemeral port and closed. The kernel applies the same address
 * rule to TCP, so ENOTFOUND / EADDRNOTAVAIL here are what listen would meet, named at `key` — not a
 * port problem. Succeeds with the address the host resolved to.
 */
export const checkListenHost = (key: string, host: string): Effect.Effect<string, ConfigError> =>
  Effect.callback<string, ConfigError>((resume) => {
    let socket: Socket | undefined
    const close = () => {
      socket?.close()
      socket = undefined
    }
    lookup(host, (err, address, family) => {
      if (err !== null) return resume(Effect.fail(hostError(key, host, err.code)))
      socket = createSocket(family === 6 ? "udp6" : "udp4")
      socket.once("error", (e: NodeJS.ErrnoException) => {
        close()
        resume(Effect.fail(hostError(key, host, e.code)))
      })
      socket.bind({ port: 0, address }, () => {
        close()
        resume(Effect.succeed(address))
      })
    })
    // interrupted while looking up or binding
    return Effect.sync(close)
  })

/**
 * The metrics listener and the proxy's own listener on one port (not 0) and overlapping addresses:
 * the second bind would fail with EADDRINUSE, so it is refused here, naming `metrics.port`.
 */
export const checkListenersApart = (config: LoadedConfig, serverAddress: string, metricsAddress: string): Effect.Effect<void, ConfigError> => {
  const { server, metrics } = config
  return metrics.port === 0 || metrics.port !== server.port || !listenAddressesCollide(serverAddress, metricsAddress)
    ? Effect.void
    : Effect.fail(new ConfigError({
      key: "metrics.port",
      value: String(metrics.port),
      expected: `a port other than server.port ${server.port} (${config.sourceOf("server.port")}): metrics.host ${JSON.stringify(metrics.host)} and server.host ` +
        `${JSON.stringify(server.host)} overlap, so the two listeners would collide (EADDRINUSE); another port, or 0 for any free one`,
      source: config.sourceOf("metrics.port")
    }))
}

/** Everything start-up would refuse that can be found without listening; the same for --check-config. */
export const checkStartup = (config: LoadedConfig, cwd: string): Effect.Effect<void, ConfigError> =>
  Effect.gen(function*() {
    // a failed check names where its key was set (env PROXY_HOST, flag --host, the file), not "listen" or "cli"
    const from = (key: string) =>
      Effect.mapError((e: ConfigError) => new ConfigError({ key: e.key, value: e.value, expected: e.expected, source: config.sourceOf(key) }))
    const serverAddress = yield* checkListenHost("server.host", config.server.host).pipe(from("server.host"))
    if (config.metrics.enabled) {
      const metricsAddress = yield* checkListenHost("metrics.host", config.metrics.host).pipe(from("metrics.host"))
      yield* checkListenersApart(config, serverAddress, metricsAddress)
    }
    yield* loadFilterRules(config.security, cwd)
    yield* checkTlsFiles(config.server.tls, config.security.upstream_tls)
    yield* checkCliWorkingDir(config.cli, cwd).pipe(from("cli.working_dir"))
  })
