import { assert, describe, it } from "@effect/vitest"
import { getHeapSpaceStatistics } from "node:v8"
import { makeReclaimer, minorGc } from "../../src/services/Reclaimer.ts"

describe("Reclaimer", () => {
  it("collects once per `every` bytes relayed, not per chunk", () => {
    let collections = 0
    const { service: r } = makeReclaimer(1000, () => { collections++ })
    for (let i = 0; i < 9; i++) r.relayed(100)
    assert.strictEqual(collections, 0)
    r.relayed(100) // 1000 reached
    assert.strictEqual(collections, 1)
    r.relayed(2500) // one big chunk: one collection, the count starts again
    assert.strictEqual(collections, 2)
    r.relayed(999)
    assert.strictEqual(collections, 2)
    assert.deepStrictEqual(r.stats(), { relayedBytes: 4499, forced: 2 })
  })

  it("a collection V8 ran on its own starts the count again (no forced scavenge right after one)", () => {
    let collections = 0
    const { service: r, collected } = makeReclaimer(1000, () => { collections++ })
    r.relayed(900)
    collected() // V8 scavenged: the 900 bytes' buffers are freed already
    r.relayed(900)
    assert.strictEqual(collections, 0)
    r.relayed(100)
    assert.strictEqual(collections, 1)
  })

  it("minorGc runs a real young-generation collection (the new space is emptied of garbage)", () => {
    const newSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_used_size ?? 0
    let garbage: Array<{ n: number }> | undefined = []
    for (let i = 0; i < 50_000; i++) garbage.push({ n: i }) // ~1 MB of young objects
    garbage = undefined
    const before = newSpaceUsed()
    minorGc()()
    const after = newSpaceUsed()
    assert.isAbove(before, 500_000)
    assert.isBelow(after, before / 2)
    // nothing leaked into the application's global scope
    assert.strictEqual(typeof (globalThis as { gc?: unknown }).gc, "undefined")
  })
})
