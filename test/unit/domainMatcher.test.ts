import { assert, describe, it } from "@effect/vitest"
import { compileDomainList, parseDomainPattern } from "../../src/domain/domainMatcher.ts"
import { normaliseHost } from "../../src/domain/hostName.ts"

const list = compileDomainList(["malicious.com", "*.ads.example.com", ".tracker.example", "Bücher.de", "10.0.0.1"])
const match = (host: string) => list.match(normaliseHost(host)!)

describe("domain lists", () => {
  it("exact: the name only, case-insensitively and with a trailing dot", () => {
    assert.strictEqual(match("malicious.com"), "malicious.com")
    assert.strictEqual(match("MALICIOUS.com."), "malicious.com")
    assert.strictEqual(match("www.malicious.com"), undefined)
    assert.strictEqual(match("notmalicious.com"), undefined)
  })
  it("wildcard: subdomains at any depth, not the apex, not look-alike labels", () => {
    assert.strictEqual(match("x.ads.example.com"), "*.ads.example.com")
    assert.strictEqual(match("a.b.c.ads.example.com"), "*.ads.example.com")
    assert.strictEqual(match("ads.example.com"), undefined)
    assert.strictEqual(match("evil-ads.example.com"), undefined)
    assert.strictEqual(match("ads.example.com.evil.net"), undefined)
  })
  it("suffix: the apex and everything below", () => {
    assert.strictEqual(match("tracker.example"), ".tracker.example")
    assert.strictEqual(match("t.tracker.example"), ".tracker.example")
    assert.strictEqual(match("nottracker.example"), undefined)
  })
  it("IDN patterns and hosts meet as punycode; IP literals as normalised", () => {
    assert.strictEqual(match("xn--bcher-kva.de"), "Bücher.de")
    assert.strictEqual(match("BÜCHER.de"), "Bücher.de")
    assert.strictEqual(match("[::ffff:10.0.0.1]"), "10.0.0.1")
    assert.strictEqual(match("0xa.0.0.1"), "10.0.0.1")
  })
  it("holds 100k+ entries; a lookup probes once per label", () => {
    const big = Array.from({ length: 120_000 }, (_, i) => (i % 2 === 0 ? `host${i}.example.net` : `*.zone${i}.example.org`))
    const l = compileDomainList(big)
    assert.strictEqual(l.size, 120_000)
    assert.strictEqual(l.match("host118000.example.net"), "host118000.example.net")
    assert.strictEqual(l.match("a.b.zone119999.example.org"), "*.zone119999.example.org")
    assert.strictEqual(l.match("host118001.example.net"), undefined)
  })
  it("parses pattern kinds and rejects junk", () => {
    assert.deepStrictEqual(parseDomainPattern("*.a.com"), { kind: "wildcard", name: "a.com" })
    assert.deepStrictEqual(parseDomainPattern(".a.com"), { kind: "suffix", name: "a.com" })
    assert.deepStrictEqual(parseDomainPattern("A.com."), { kind: "exact", name: "a.com" })
    for (const bad of ["", "a b.com", "*", "a.*.com", "*.", "**.a.com"]) assert.strictEqual(parseDomainPattern(bad), undefined, bad)
  })
})
