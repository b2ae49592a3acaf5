import { assert, describe, it } from "@effect/vitest"
import { headerOf, makeStored, merge304, validatorMatches } from "../../src/domain/cache/StoredResponse.ts"

const stored = (headers: Array<string>) =>
  makeStored({ key: "forward http://a/x", status: 200, headers, body: Buffer.from("x"), requestTime: 0, responseTime: 0, vary: [], variant: "", heuristicMs: 0 })

/** The gzip copy Gatehouse stored: its ETag is the weak form of the origin's strong one (RFC 9110 §8.8.3). */
const gzipCopy = stored(["content-encoding", "gzip", "etag", 'W/"x"', "vary", "Origin, Accept-Encoding", "cache-control", "max-age=1"])

describe("RFC 9111 §4.3.4 selecting and updating the stored response with a 304", () => {
  it("the origin's strong ETag selects the compressed copy that carries its weak form", () => {
    assert.isTrue(validatorMatches(gzipCopy, ["etag", '"x"']))
    assert.isTrue(validatorMatches(gzipCopy, ["etag", 'W/"x"']))
    assert.isFalse(validatorMatches(gzipCopy, ["etag", '"y"']))
    assert.isTrue(validatorMatches(stored(["etag", '"x"']), ["etag", '"x"']))
    assert.isFalse(validatorMatches(stored([]), ["etag", '"x"']))
  })

  it("the update keeps the compressed copy's weak ETag and its Vary (§3.2: fields the stored response depends on)", () => {
    const merged = merge304(gzipCopy, ["etag", '"x"', "vary", "Origin", "cache-control", "max-age=300"], 10, 20)
    assert.strictEqual(headerOf(merged.headers, "etag"), 'W/"x"')
    assert.strictEqual(headerOf(merged.headers, "vary"), "Origin, Accept-Encoding")
    assert.strictEqual(headerOf(merged.headers, "cache-control"), "max-age=300")
    assert.strictEqual(headerOf(merged.headers, "content-encoding"), "gzip")
    assert.strictEqual(merged.lifetimeMs, 300_000)
  })

  it("a new strong ETag (a different opaque-tag) replaces the stored one", () => {
    const merged = merge304(stored(["etag", '"x"']), ["etag", '"x2"'], 10, 20)
    assert.strictEqual(headerOf(merged.headers, "etag"), '"x2"')
  })
})
