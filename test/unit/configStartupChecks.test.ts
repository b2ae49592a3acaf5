/**
 * The start-up checks --check-config shares with start-up (src/services/startupChecks.ts): each
 * failure names its key. Real files, real DNS lookups of reserved names (RFC 6761 ".invalid"), real
 * binds on TEST-NET-1 (RFC 5737), which no machine here owns.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { decodeConfig } from "../../src/services/Config.ts"
import { createServer } from "node:net"
import { listenServer } from "../../src/services/listenServer.ts"
import { checkListenHost, checkStartup } from "../../src/services/startupChecks.ts"

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
