/**
 * Filter service against real rules files: merge over the inline rules, reload swapping the rules
 * atomically, an invalid file rejected with the rules in force kept, a real SIGHUP reloading.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Stream } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Config } from "../../src/services/Config.ts"
import { Filter, filterRequest } from "../../src/services/Filter.ts"
import { BUILTIN_FILTERS } from "../../src/services/filters/builtins.ts"

const dir = mkdtempSync(join(tmpdir(), "gatehouse-filter-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const rulesFile = (yaml: string) => {
  const file = join(dir, `filters-${++n}.yaml`)
  writeFileSync(file, yaml)
  return file
}

const filterLayer = (security: Record<string, unknown>) =>
  Filter.layer.pipe(Layer.provide(Config.layerOf({ logging: { level: "none" }, security })))

const forward = (host: string) => filterRequest("forward", host, 80, "127.0.0.1", "GET")
const verdict = (filter: Filter["Service"], host: string) =>
  filter.request(forward(host)).pipe(Effect.match({ onFailure: (b) => b.rule, onSuccess: () => "pass" }))

describe("Filter rules", () => {
  it.effect("the file is merged over the inline rules: lists from the file replace, other keys stay", () => {
    const file = rulesFile(`filtering:\n  domains:\n    blocked: ["b.example"]\n`)
    return Effect.gen(function*() {
      const filter = yield* Filter
      assert.strictEqual(yield* verdict(filter, "b.example"), "security.filtering.domains.blocked: b.example")
      // the inline list was replaced by the file's
      assert.strictEqual(yield* verdict(filter, "a.example"), "pass")
    }).pipe(Effect.provide(filterLayer({
      filters_file: file,
      filtering: { mode: "blocklist", domains: { blocked: ["a.example"] } }
    })))
  })

  it.effect("the file may nest its rules under `security:` and keeps an inline mode", () => {
    const file = rulesFile(`security:\n  filtering:\n    domains:\n      allowed: ["ok.example"]\n`)
    return Effect.gen(function*() {
      const filter = yield* Filter
      assert.strictEqual(yield* verdict(filter, "ok.example"), "pass")
      assert.strictEqual(yield* verdict(filter, "other.example"), "security.filtering.mode: allowlist")
    }).pipe(Effect.provide(filterLayer({ filters_file: file, filtering: { mode: "allowlist" } })))
  })

  it.effect("filters_file: \"\", or the default path (config/filters.yaml) absent, means inline rules only", () =>
    Effect.gen(function*() {
      for (const layer of [
        filterLayer({ filters_file: "", filtering: { domains: { blocked: ["x.example"] } } }),
        // resolved against a directory without config/filters.yaml
        Filter.make(BUILTIN_FILTERS, dir).pipe(Layer.provide(Config.layerOf({ logging: { level: "none" }, security: { filtering: { domains: { blocked: ["x.example"] } } } })))
      ]) {
        // (had a file been read, its `blocked` list would have replaced the inline one)
        const rule = yield* Effect.gen(function*() { return yield* verdict(yield* Filter, "x.example") }).pipe(Effect.provide(layer))
        assert.strictEqual(rule, "security.filtering.domains.blocked: x.example")
      }
    }))

  it.effect("threat: a wrong path dropping every rule — an explicitly set file that does not exist stops start-up, naming security.filters_file", () => {
    const file = join(dir, "absent.yaml")
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Layer.build(filterLayer({ filters_file: file }))))
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual(error.key, "security.filters_file")
      assert.include(error.message, file)
    })
  })

  it.effect("an invalid file at start-up stops start-up, naming the key and the file", () => {
    const file = rulesFile(`filtering:\n  mode: denylist\n`)
    return Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Layer.build(filterLayer({ filters_file: file }))))
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual(error.key, "filtering.mode")
      assert.include(error.message, file)
    })
  })
})

describe("Filter reload", () => {
  it.effect("reload swaps the rules; an invalid file is rejected and the old rules stay", () => {
    const file = rulesFile(`filtering: {domains: {blocked: ["one.example"]}}\n`)
    return Effect.gen(function*() {
      const filter = yield* Filter
      assert.strictEqual(yield* verdict(filter, "one.example"), "security.filtering.domains.blocked: one.example")
      writeFileSync(file, `filtering: {domains: {blocked: ["two.example"]}}\n`)
      const snap = yield* filter.reload
      assert.strictEqual(snap.generation, 2)
      assert.strictEqual(yield* verdict(filter, "one.example"), "pass")
      assert.strictEqual(yield* verdict(filter, "two.example"), "security.filtering.domains.blocked: two.example")

      writeFileSync(file, `filtering: {domains: {blocked: ["*bad*"]}}\n`)
      const rejected = yield* Effect.flip(filter.reload)
      assert.strictEqual(rejected._tag, "ConfigError")
      assert.include(rejected.message, "filtering.domains.blocked.0")
      writeFileSync(file, `filtering: [unclosed\n`)
      assert.strictEqual((yield* Effect.flip(filter.reload))._tag, "ConfigError")
      assert.strictEqual(yield* verdict(filter, "two.example"), "security.filtering.domains.blocked: two.example")
    }).pipe(Effect.provide(filterLayer({ filters_file: file })))
  })

  it.effect("threat: a deploy removing the file — a file in force that vanished is a rejected reload; the rules in force stay", () => {
    const file = rulesFile(`filtering: {domains: {blocked: ["kept.example"]}}\n`)
    return Effect.gen(function*() {
      const filter = yield* Filter
      rmSync(file)
      const rejected = yield* Effect.flip(filter.reload)
      assert.strictEqual(rejected._tag, "ConfigError")
      assert.strictEqual(rejected.key, "security.filters_file")
      assert.strictEqual(yield* verdict(filter, "kept.example"), "security.filtering.domains.blocked: kept.example")
      writeFileSync(file, `filtering: {domains: {blocked: ["back.example"]}}\n`)
      assert.strictEqual((yield* filter.reload).generation, 2)
      assert.strictEqual(yield* verdict(filter, "back.example"), "security.filtering.domains.blocked: back.example")
    }).pipe(Effect.provide(filterLayer({ filters_file: file })))
  })

  it.effect("a connection's ACL verdict is kept until a reload changes the rules", () => {
    const file = rulesFile(`access_control: {deny: []}\n`)
    const connection = {}
    return Effect.gen(function*() {
      const filter = yield* Filter
      const judge = filter.connection(connection, "10.9.8.7").pipe(Effect.match({ onFailure: (b) => b.rule, onSuccess: () => "pass" }))
      filter.admit(connection, "10.9.8.7")
      assert.strictEqual(yield* judge, "pass")
      writeFileSync(file, `access_control: {deny: ["10.0.0.0/8"]}\n`)
      yield* filter.reload
      assert.strictEqual(yield* judge, "security.access_control.deny: 10.0.0.0/8")
    }).pipe(Effect.provide(filterLayer({ filters_file: file })))
  })

  it.effect("SIGHUP reloads the file (real signal to this process)", () => {
    const file = rulesFile(`filtering: {domains: {blocked: ["before.example"]}}\n`)
    return Effect.gen(function*() {
      const filter = yield* Filter
      const subscribed = yield* Deferred.make<void>()
      const next = yield* filter.changes.pipe(
        Stream.tap(() => Deferred.succeed(subscribed, undefined)),
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(subscribed)
      writeFileSync(file, `filtering: {domains: {blocked: ["after.example"]}}\n`)
      process.kill(process.pid, "SIGHUP")
      const snaps = yield* Fiber.join(next)
      assert.deepStrictEqual(Array.from(snaps, (s) => s.generation), [1, 2])
      assert.strictEqual(yield* verdict(filter, "after.example"), "security.filtering.domains.blocked: after.example")
      assert.strictEqual(yield* verdict(filter, "before.example"), "pass")
    }).pipe(Effect.provide(filterLayer({ filters_file: file })))
  })
})
