/**
 * The start-up checks --check-config shares with start-up (src/services/startupChecks.ts): each
 * failure names its key. Real files, real DNS lookups of reserved names (RFC 6761 ".invalid"), real
 * binds on TEST-NET-1 (RFC 5737), which no machine here owns.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { CliArgs } from "../../src/domain/cliArgs.ts"
import { listenAddressesCollide } from "../../src/domain/config/listenHost.ts"
import { decodeConfig, loadConfig } from "../../src/services/Config.ts"
import { createServer } from "node:net"
import { listenServer } from "../../src/services/listenServer.ts"
import { checkListenHost, checkStartup } from "../../src/services/startupChecks.ts"

const noArgs: CliArgs = { config: undefined, host: undefined, port: undefined, env: undefined, checkConfig: true, help: false }

describe("start-up checks without listening", () => {
  it.effect("cli.working_dir must exist when the endpoint is enabled (only then)", () =>
    Effect.gen(function*() {
      const cwd = mkdtempSync(join(tmpdir(), "gatehouse-chk-"))
      const base = { security: { filters_file: "" }, metrics: { enabled: false } }
      const on = yield* decodeConfig({ ...base, cli: { enabled: true, working_dir: "/nonexistent" } })
      const e = yield* Effect.flip(checkStartup(on, cwd))
      assert.strictEqual(e.key, "cli.working_dir")
      assert.include(e.message, `"/nonexistent"`)
      yield* checkStartup(yield* decodeConfig({ ...base, cli: { enabled: false, working_dir: "/nonexistent" } }), cwd)
      yield* checkStartup(yield* decodeConfig({ ...base, cli: { enabled: true, working_dir: "." } }), cwd)
    }))

  it.effect("a listen host that does not resolve, or is not this machine's, is named as server.host (not server.port)", () =>
    Effect.gen(function*() {
      const unresolved = yield* Effect.flip(checkListenHost("server.host", "no-such-host.invalid"))
      assert.strictEqual(unresolved.key, "server.host")
      assert.match(unresolved.message, /got "no-such-host\.invalid"; expected an address of this machine/)
      const foreign = yield* Effect.flip(checkListenHost("server.host", "192.0.2.1"))
      assert.strictEqual(foreign.key, "server.host")
      assert.include(foreign.message, "EADDRNOTAVAIL")
      yield* checkListenHost("server.host", "127.0.0.1")
      yield* checkListenHost("server.host", "0.0.0.0")
      yield* checkListenHost("server.host", "localhost")
    }))

  it.effect("metrics.host is checked when metrics are on", () =>
    Effect.gen(function*() {
      const cwd = mkdtempSync(join(tmpdir(), "gatehouse-chk-"))
      const config = yield* decodeConfig({ security: { filters_file: "" }, metrics: { enabled: true, host: "192.0.2.1" } })
      assert.strictEqual((yield* Effect.flip(checkStartup(config, cwd))).key, "metrics.host")
    }))

  it.effect("listen itself names the key at fault: the host for an address it cannot bind, the port when it is taken", () =>
    Effect.gen(function*() {
      const taken = createServer()
      const port = yield* listenServer(taken, "server", 0, "127.0.0.1")
      const inUse = yield* Effect.flip(listenServer(createServer(), "server", port, "127.0.0.1"))
      assert.strictEqual(inUse.key, "server.port")
      assert.include(inUse.message, "EADDRINUSE")
      taken.close()
      const foreign = yield* Effect.flip(listenServer(createServer(), "metrics", 0, "192.0.2.1"))
      assert.strictEqual(foreign.key, "metrics.host")
      assert.include(foreign.message, "EADDRNOTAVAIL")
      const unresolved = yield* Effect.flip(listenServer(createServer(), "server", 0, "no-such-host.invalid"))
      assert.strictEqual(unresolved.key, "server.host")
    }))
})

describe("the proxy's own two listeners (server.port and metrics.port)", () => {
  it("addresses collide on one port as Linux binds them: the same address in any spelling, 0.0.0.0 with IPv4, :: with all", () => {
    const collide: ReadonlyArray<readonly [string, string]> = [
      ["127.0.0.1", "127.0.0.1"], ["0.0.0.0", "127.0.0.1"], ["127.0.0.1", "0.0.0.0"], ["::", "127.0.0.1"], ["0.0.0.0", "::"],
      ["::", "::1"], ["::1", "0:0:0:0:0:0:0:1"], ["::ffff:127.0.0.1", "127.0.0.1"]
    ]
    for (const [a, b] of collide) assert.isTrue(listenAddressesCollide(a, b), `${a} ${b}`)
    for (const [a, b] of [["127.0.0.1", "127.0.0.2"], ["0.0.0.0", "::1"], ["::1", "127.0.0.1"]] as const) {
      assert.isFalse(listenAddressesCollide(a, b), `${a} ${b}`)
    }
  })

  it.effect("threat: --check-config said OK, then start-up failed with EADDRINUSE — metrics.port equal to server.port on an overlapping host is refused, naming metrics.port", () =>
    Effect.gen(function*() {
      const cwd = mkdtempSync(join(tmpdir(), "gatehouse-chk-"))
      const security = { filters_file: "" }
      for (const [serverHost, metricsHost] of [["127.0.0.1", "127.0.0.1"], ["0.0.0.0", "127.0.0.1"], ["localhost", "localhost"]] as const) {
        const config = yield* decodeConfig({ security, server: { host: serverHost, port: 24081 }, metrics: { host: metricsHost, port: 24081 } })
        const e = yield* Effect.flip(checkStartup(config, cwd))
        assert.strictEqual(e.key, "metrics.port")
        assert.include(e.message, "got 24081; expected a port other than server.port 24081 (inline config)")
        assert.include(e.message, "EADDRINUSE")
      }
      // another address, port 0 on both (any free port) or metrics off: two listeners that do start
      yield* checkStartup(yield* decodeConfig({ security, server: { host: "127.0.0.1", port: 24081 }, metrics: { host: "127.0.0.2", port: 24081 } }), cwd)
      yield* checkStartup(yield* decodeConfig({ security, server: { port: 0 }, metrics: { port: 0 } }), cwd)
      yield* checkStartup(yield* decodeConfig({ security, server: { port: 24081 }, metrics: { enabled: false, port: 24081 } }), cwd)
    }))
})

describe("a failed start-up check names where its key was set", () => {
  it.effect("PROXY_HOST that does not resolve is named as env PROXY_HOST, not (listen); cli.working_dir as the file", () =>
    Effect.gen(function*() {
      const cwd = mkdtempSync(join(tmpdir(), "gatehouse-chk-"))
      const env = { PROXY_HOST: "no-such-host.invalid", METRICS_ENABLED: "false", FILTERS_FILE: "" }
      const host = yield* Effect.flip(Effect.flatMap(loadConfig(noArgs, env, cwd), (c) => checkStartup(c, cwd)))
      assert.strictEqual(host.key, "server.host")
      assert.include(host.message, "(env PROXY_HOST)")
      assert.notInclude(host.message, "(listen)")
      const flag = yield* Effect.flip(Effect.flatMap(loadConfig({ ...noArgs, host: "no-such-host.invalid" }, { METRICS_ENABLED: "false" }, cwd), (c) => checkStartup(c, cwd)))
      assert.include(flag.message, "(flag --host)")
      const file = join(cwd, "g.yaml")
      writeFileSync(file, "cli: {enabled: true, working_dir: /nonexistent}\nsecurity: {filters_file: \"\"}\nmetrics: {enabled: false}\n")
      const dir = yield* Effect.flip(Effect.flatMap(loadConfig({ ...noArgs, config: file }, {}, cwd), (c) => checkStartup(c, cwd)))
      assert.strictEqual(dir.key, "cli.working_dir")
      assert.include(dir.message, `(${file})`)
    }))
})
