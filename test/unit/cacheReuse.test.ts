import { assert, describe, it } from "@effect/vitest"
import { reuse, retentionMs, STALE_KEEP_MS } from "../../src/domain/cache/reuse.ts"
import { makeStored } from "../../src/domain/cache/StoredResponse.ts"
import { parseCacheControl } from "../../src/domain/cache/cacheControl.ts"

const stored = (headers: Array<string>) =>
  makeStored({ key: "forward http://a/x", status: 200, headers, body: Buffer.from("x"), requestTime: 0, responseTime: 0, vary: [], variant: "", heuristicMs: 0 })

describe("retention: how long an entry is kept (memory and Redis alike)", () => {
  it("§5.2.1.2 an entry without a validator is kept past its freshness, so max-stale can still be served", () => {
    const s = stored(["cache-control", "max-age=2"])
    const later = 3_500 // 1.5 s stale
    assert.isAbove(retentionMs(s, 0), 2_000 + later)
    assert.strictEqual(retentionMs(s, 0), 2_000 + STALE_KEEP_MS)
    assert.strictEqual(reuse(s, parseCacheControl("max-stale=600"), later).kind, "stale")
  })

  it("an entry with a validator keeps the same bounded window (revalidation with a 304)", () => {
    assert.strictEqual(retentionMs(stored(["cache-control", "max-age=2", "etag", '"e"']), 0), 2_000 + STALE_KEEP_MS)
  })

  it("§4.2.4 an entry that may not be served stale and has no validator is dropped once stale", () => {
    for (const cc of ["max-age=2, must-revalidate", "max-age=2, proxy-revalidate", "s-maxage=2", "max-age=2, no-cache"]) {
      assert.strictEqual(retentionMs(stored(["cache-control", cc]), 0), 2_000, cc)
    }
  })
})
