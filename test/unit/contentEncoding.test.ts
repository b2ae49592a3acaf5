import { assert, describe, it } from "@effect/vitest"
import { DEFAULT_COMPRESSIBLE_TYPES } from "../../src/domain/config/compression.ts"
import {
  codingAcceptable,
  compileTypes,
  isCompressible,
  negotiateEncoding,
  normalizedAcceptEncoding,
  varyWithAcceptEncoding,
  weakenEtag
} from "../../src/domain/contentEncoding.ts"

const ALL = ["zstd", "br", "gzip"] as const

describe("negotiateEncoding (RFC 9110 §12.5.3 Accept-Encoding)", () => {
  const matrix: ReadonlyArray<readonly [string | undefined, ReadonlyArray<"zstd" | "br" | "gzip">, string | undefined]> = [
    [undefined, ALL, undefined], // no header: identity
    ["", ALL, undefined], // empty value: identity only
    ["gzip", ALL, "gzip"],
    ["GZIP", ALL, "gzip"], // codings are case-insensitive
    ["x-gzip", ALL, "gzip"], // §8.4.1.3 x-gzip ≡ gzip
    ["gzip, deflate, br, zstd", ALL, "zstd"], // equal q: the server's order decides
    ["gzip, deflate, br, zstd", ["br", "gzip"], "br"],
    ["gzip;q=1.0, br;q=0.8", ALL, "gzip"], // higher q wins over server order
    ["br;q=0.5, gzip;q=0.9, zstd;q=0.1", ALL, "gzip"],
    ["gzip;q=0", ALL, undefined], // q=0: not acceptable
    ["gzip;q=0, br", ALL, "br"],
    ["*", ALL, "zstd"], // * covers every coding not named
    ["*;q=0.5, gzip;q=0", ALL, "zstd"], // named q=0 beats *
    ["br;q=0, *;q=0.2", ["br", "gzip"], "gzip"],
    ["identity", ALL, undefined],
    ["identity;q=0", ALL, undefined], // nothing offered acceptable → identity anyway (no 406 from a proxy)
    ["identity;q=0, gzip", ALL, "gzip"],
    ["deflate, compress", ALL, undefined], // codings we do not produce
    ["gzip;q=2", ALL, undefined], // malformed qvalue: entry ignored
    ["gzip;q=0.0001", ALL, undefined], // more than three decimals: malformed
    ["gzip ; q=0.5 , br ; q=0.4", ALL, "gzip"], // whitespace around parameters
    ["gzip", [], undefined]
  ]
  for (const [header, offered, expected] of matrix) {
    it(`${JSON.stringify(header)} with [${offered.join(",")}] → ${expected ?? "identity"}`, () => {
      assert.strictEqual(negotiateEncoding(header, offered), expected)
    })
  }
  it("joins repeated Accept-Encoding field lines", () => {
    assert.strictEqual(negotiateEncoding(["gzip;q=0.1", "br"], ALL), "br")
  })
  it("normalizes for the cache's variant key", () => {
    assert.strictEqual(normalizedAcceptEncoding("gzip, br", ALL), normalizedAcceptEncoding("BR;q=1.0 , gzip", ALL))
    assert.strictEqual(normalizedAcceptEncoding(undefined, ALL), "identity")
    assert.strictEqual(normalizedAcceptEncoding("deflate, compress", ALL), "identity")
  })
  it("RFC 9111 §4.1 one variant per coding: every list that gets gzip normalizes to gzip", () => {
    for (const ae of ["gzip", "gzip, deflate", "gzip, compress", "gzip, br;q=0.5", "gzip, zstd;q=0.1", "x-gzip", "deflate;q=1, gzip;q=0.5"]) {
      assert.strictEqual(normalizedAcceptEncoding(ae, ALL), "gzip", ae)
    }
  })
})

describe("codingAcceptable (RFC 9110 §12.5.3): may a stored response's coding be sent to this client", () => {
  const matrix: ReadonlyArray<readonly [string | undefined, string | undefined, boolean]> = [
    ["zstd", undefined, true], // identity is always sent (no 406 from a proxy)
    ["zstd", "identity", true],
    [undefined, "gzip", true], // no Accept-Encoding: any coding is acceptable
    ["", "gzip", false], // an empty list asks for identity only
    ["zstd", "gzip", false],
    ["zstd, gzip", "gzip", true],
    ["x-gzip", "gzip", true],
    ["gzip", "x-gzip", true],
    ["gzip;q=0, *", "gzip", false],
    ["*;q=0.1", "br", true],
    ["gzip", "gzip, br", false] // every coding applied must be acceptable
  ]
  for (const [ae, ce, expected] of matrix) {
    it(`Accept-Encoding ${JSON.stringify(ae)}, Content-Encoding ${JSON.stringify(ce)} → ${expected}`, () => {
      assert.strictEqual(codingAcceptable(ae, ce), expected)
    })
  }
})

describe("isCompressible", () => {
  const types = compileTypes(DEFAULT_COMPRESSIBLE_TYPES)
  const json = { "content-type": "application/json; charset=utf-8", "content-length": "5000" }
  it("accepts a large JSON 200", () => assert.isTrue(isCompressible(200, json, types, 1024)))
  it("matches text/* prefixes and +json / +xml suffixes", () => {
    const t = compileTypes(["text/*", "*+json"])
    assert.isTrue(isCompressible(200, { "content-type": "text/anything" }, t, 0))
    assert.isTrue(isCompressible(200, { "content-type": "application/problem+json" }, t, 0))
    assert.isFalse(isCompressible(200, { "content-type": "image/png" }, t, 0))
  })
  it("refuses a body below min_size", () => assert.isFalse(isCompressible(200, { ...json, "content-length": "100" }, types, 1024)))
  it("compresses chunked bodies of unknown length", () =>
    assert.isTrue(isCompressible(200, { "content-type": "text/html" }, types, 1024)))
  it("never re-encodes a body the upstream already encoded", () => {
    assert.isFalse(isCompressible(200, { ...json, "content-encoding": "gzip" }, types, 0))
    assert.isTrue(isCompressible(200, { ...json, "content-encoding": "identity" }, types, 0))
  })
  it("RFC 9111 §5.2.2.6: Cache-Control no-transform forbids it", () =>
    assert.isFalse(isCompressible(200, { ...json, "cache-control": "public, no-transform" }, types, 0)))
  it("RFC 9110 §15.3.7: never a 206 or a Content-Range", () => {
    assert.isFalse(isCompressible(206, json, types, 0))
    assert.isFalse(isCompressible(200, { ...json, "content-range": "bytes 0-1/2" }, types, 0))
  })
  it("not for 204, 304 or types not listed", () => {
    assert.isFalse(isCompressible(204, json, types, 0))
    assert.isFalse(isCompressible(304, json, types, 0))
    assert.isFalse(isCompressible(200, { "content-type": "image/jpeg" }, types, 0))
    assert.isFalse(isCompressible(200, {}, types, 0))
  })
})

describe("response header edits", () => {
  it("Vary gets Accept-Encoding once (RFC 9110 §12.5.5)", () => {
    assert.strictEqual(varyWithAcceptEncoding(undefined), "Accept-Encoding")
    assert.strictEqual(varyWithAcceptEncoding("Origin"), "Origin, Accept-Encoding")
    assert.strictEqual(varyWithAcceptEncoding("origin, accept-encoding"), "origin, accept-encoding")
    assert.strictEqual(varyWithAcceptEncoding("*"), "*")
  })
  it("a strong ETag becomes weak on the transformed representation (§8.8.3)", () => {
    assert.strictEqual(weakenEtag('"abc"'), 'W/"abc"')
    assert.strictEqual(weakenEtag('W/"abc"'), 'W/"abc"')
    assert.strictEqual(weakenEtag(undefined), undefined)
  })
})
