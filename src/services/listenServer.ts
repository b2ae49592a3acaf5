/**
 * Binds a node server. What listen refuses is a ConfigError naming the config key at fault: the host's
 * key for an address this machine cannot bind (the name does not resolve, or resolves elsewhere),
 * the port's key for anything else (in use, privileged).
 */
import * as Effect from "effect/Effect"
import type { Server } from "node:net"
import { ConfigError } from "../domain/errors.ts"

const HOST_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EADDRNOTAVAIL"])

export const hostError = (key: string, host: string, code: string | undefined) =>
  new ConfigError({
    key,
    value: JSON.stringify(host),
    expected: `an address of this machine, or a host name resolving to one (${code ?? "unusable"})`,
    source: "listen"
  })

/** `prefix`: the config section, "server" or "metrics" (its `.host` and `.port` keys). */
export const listenServer = (server: Server, prefix: string, port: number, host: string, backlog?: number) =>
  Effect.callback<number, ConfigError>((resume) => {
    const onError = (e: NodeJS.ErrnoException) =>
      resume(Effect.fail(HOST_CODES.has(e.code ?? "") ? hostError(`${prefix}.host`, host, e.code) : new ConfigError({
        key: `${prefix}.port`,
        value: String(port),
        expected: `a free port on ${host} (${e.code ?? e.message})`,
        source: "listen"
      })))
    server.once("error", onError)
    server.listen(backlog === undefined ? { port, host } : { port, host, backlog }, () => {
      server.removeListener("error", onError)
      const addr = server.address()
      resume(Effect.succeed(typeof addr === "object" && addr !== null ? addr.port : port))
    })
  })
