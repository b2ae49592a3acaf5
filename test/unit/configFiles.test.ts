/**
 * Reading the config files: the top level must be a mapping (an empty file is no keys), and the
 * --env/PROXY_ENV overlay is the file beside the main one (FILE.NAME.yaml), config/proxy.NAME.yaml
 * when no --config is given.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { CliArgs } from "../../src/domain/cliArgs.ts"
import { loadConfig } from "../../src/services/Config.ts"

const args = (over: Partial<CliArgs> = {}): CliArgs => ({ config: undefined, host: undefined, port: undefined, env: undefined, checkConfig: true, help: false, ...over })

/** A fresh directory holding the given files (relative path → content). */
const dirWith = (files: Record<string, string>): string => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-cfg-"))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return dir
}

describe("the top level of a config file", () => {
  it.effect("a scalar or a list is refused, naming the file", () =>
    Effect.gen(function*() {
      for (const [text, got] of [["hello\n", `"hello"`], ["- a\n", `["a"]`], ["42\n", "42"]] as const) {
        const dir = dirWith({ "g.yaml": text })
        const e = yield* Effect.flip(loadConfig(args({ config: join(dir, "g.yaml") }), {}, dir))
        assert.strictEqual(e._tag, "ConfigError")
        assert.include(e.message, "expected a mapping (key: value) at the top level")
        assert.include(e.message, join(dir, "g.yaml"))
        assert.include(e.message, got)
      }
    }))

  it.effect("an overlay whose top level is a list is refused too, naming the overlay", () =>
    Effect.gen(function*() {
      const dir = dirWith({ "g.yaml": "server: {port: 1}\n", "g.dev.yaml": "- x\n" })
      const e = yield* Effect.flip(loadConfig(args({ config: join(dir, "g.yaml"), env: "dev" }), {}, dir))
      assert.include(e.message, "at the top level")
      assert.include(e.message, join(dir, "g.dev.yaml"))
    }))

  it.effect("an empty file, or one with only comments, is valid: all defaults", () =>
    Effect.gen(function*() {
      for (const text of ["", "# nothing here\n", "~\n"]) {
        const dir = dirWith({ "g.yaml": text })
        const c = yield* loadConfig(args({ config: join(dir, "g.yaml") }), {}, dir)
        assert.strictEqual(c.server.port, 8080)
      }
    }))
})

describe("--env NAME: the overlay beside the main file", () => {
  it.effect("--config DIR/X.yaml --env dev merges DIR/X.dev.yaml, not config/proxy.dev.yaml", () =>
    Effect.gen(function*() {
      const dir = dirWith({
        "etc/edge.yaml": "server: {port: 1111}\n",
        "etc/edge.dev.yaml": "server: {port: 2222}\n",
        "config/proxy.dev.yaml": "server: {port: 3333}\n"
      })
      const c = yield* loadConfig(args({ config: "etc/edge.yaml", env: "dev" }), {}, dir)
      assert.strictEqual(c.server.port, 2222)
      assert.deepStrictEqual(c.sources, ["etc/edge.yaml", "etc/edge.dev.yaml"])
    }))

  it.effect("PROXY_ENV works the same; a missing overlay names the file it looked for", () =>
    Effect.gen(function*() {
      const dir = dirWith({ "etc/edge.yaml": "server: {port: 1111}\n", "config/proxy.prod.yaml": "server: {port: 3333}\n" })
      const e = yield* Effect.flip(loadConfig(args({ config: "etc/edge.yaml" }), { PROXY_ENV: "prod" }, dir))
      assert.include(e.message, "etc/edge.prod.yaml")
      assert.include(e.message, "env PROXY_ENV")
    }))

  it.effect("without --config: config/proxy.NAME.yaml, also when config/proxy.yaml is absent", () =>
    Effect.gen(function*() {
      const both = dirWith({ "config/proxy.yaml": "server: {port: 1111}\n", "config/proxy.dev.yaml": "server: {port: 2222}\n" })
      const c = yield* loadConfig(args({ env: "dev" }), {}, both)
      assert.deepStrictEqual(c.sources, ["config/proxy.yaml", "config/proxy.dev.yaml"])
      assert.strictEqual(c.server.port, 2222)
      const overlayOnly = dirWith({ "config/proxy.dev.yaml": "server: {port: 2222}\n" })
      assert.strictEqual((yield* loadConfig(args({ env: "dev" }), {}, overlayOnly)).server.port, 2222)
      const none = dirWith({})
      const e = yield* Effect.flip(loadConfig(args({ env: "dev" }), {}, none))
      assert.include(e.message, "config/proxy.dev.yaml")
    }))
})

describe("numbers as YAML and env vars write them", () => {
  it.effect("threat: YAML .inf / .nan and RATE_LIMIT_RPS=Infinity are refused, shown as written (not as JSON null), with the source", () =>
    Effect.gen(function*() {
      const dir = dirWith({ "g.yaml": "security: {rate_limiting: {requests_per_second: .inf}}\n", "n.yaml": "tracing: {sample_ratio: .nan}\n" })
      const inf = yield* Effect.flip(loadConfig(args({ config: join(dir, "g.yaml") }), {}, dir))
      assert.strictEqual(inf.key, "security.rate_limiting.requests_per_second")
      assert.include(inf.message, "got Infinity; expected a rate in requests per second from 0.001 to 1000000")
      assert.include(inf.message, join(dir, "g.yaml"))
      const nan = yield* Effect.flip(loadConfig(args({ config: join(dir, "n.yaml") }), {}, dir))
      assert.include(nan.message, "at tracing.sample_ratio: got NaN; expected a ratio from 0 to 1")
      const env = yield* Effect.flip(loadConfig(args(), { RATE_LIMIT_RPS: "Infinity" }, dir))
      assert.include(env.message, "got Infinity; expected a rate in requests per second from 0.001 to 1000000")
      assert.include(env.message, "(env RATE_LIMIT_RPS)")
      const port = yield* Effect.flip(loadConfig(args(), { PROXY_PORT: "-1" }, dir))
      assert.include(port.message, `at server.port: got "-1"; expected a port from 0 to 65535`)
      assert.include(port.message, "(env PROXY_PORT)")
    }))
})

describe("the shipped profiles", () => {
  it.effect("threat: metrics scraped by anyone — --env prod (public 0.0.0.0) answers /metrics only on the loopback metrics listener", () =>
    Effect.gen(function*() {
      const root = new URL("../../", import.meta.url).pathname
      const prod = yield* loadConfig(args({ env: "prod" }), {}, root)
      assert.strictEqual(prod.server.host, "0.0.0.0")
      assert.isTrue(prod.metrics.enabled)
      assert.isFalse(prod.metrics.on_main_port)
      assert.strictEqual(prod.metrics.host, "127.0.0.1")
      assert.notStrictEqual(prod.metrics.port, prod.server.port)
      // METRICS_HOST moves the listener to a pod address without editing the profile
      assert.strictEqual((yield* loadConfig(args({ env: "prod" }), { METRICS_HOST: "0.0.0.0" }, root)).metrics.host, "0.0.0.0")
    }))
})
