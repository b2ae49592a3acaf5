import { assert, describe, it } from "@effect/vitest"
import { compileCidrList, parseCidr, parseIp } from "../../src/domain/cidr.ts"
import { ipRanges } from "../../src/domain/ipRanges.ts"

const ip = (s: string) => parseIp(s)!

describe("IP addresses", () => {
  it("parses IPv4, IPv6 (compressed, bracketed, zone id) and folds IPv4-mapped IPv6 into IPv4", () => {
    assert.deepStrictEqual(parseIp("10.1.2.3"), { v: 4, n: 0x0a010203 })
    assert.deepStrictEqual(parseIp("::1"), { v: 6, n: 1n })
    assert.deepStrictEqual(parseIp("[::1]"), { v: 6, n: 1n })
    assert.deepStrictEqual(parseIp("fe80::1%eth0"), { v: 6, n: (0xfe80n << 112n) | 1n })
    assert.deepStrictEqual(parseIp("::ffff:10.1.2.3"), { v: 4, n: 0x0a010203 })
    assert.deepStrictEqual(parseIp("::FFFF:a01:203"), { v: 4, n: 0x0a010203 })
  })
  it("rejects malformed addresses", () => {
    for (const bad of ["", "256.0.0.1", "1.2.3", "010.0.0.1", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "x"]) {
      assert.strictEqual(parseIp(bad), undefined, bad)
    }
  })
  it("parses CIDRs; a bare address is a host route; ::ffff:a.b.c.d/p is IPv4 /p-96", () => {
    assert.strictEqual(parseCidr("10.0.0.0/8")?.prefix, 8)
    assert.strictEqual(parseCidr("192.0.2.7")?.prefix, 32)
    assert.strictEqual(parseCidr("2001:db8::/32")?.prefix, 32)
    assert.strictEqual(parseCidr("::1")?.prefix, 128)
    assert.deepStrictEqual([parseCidr("::ffff:10.0.0.0/104")?.v, parseCidr("::ffff:10.0.0.0/104")?.prefix], [4, 8])
    for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/x", "::ffff:10.0.0.0/64", "nope/8"]) assert.strictEqual(parseCidr(bad), undefined, bad)
  })
})

describe("CIDR lists", () => {
  const list = compileCidrList(["10.0.0.0/8", "10.1.0.0/16", "192.0.2.7", "2001:db8::/32", "::1/128", "0.0.0.0/0"])
  it("matches the most specific rule first", () => {
    assert.strictEqual(list.match(ip("10.1.2.3")), "10.1.0.0/16")
    assert.strictEqual(list.match(ip("10.2.0.1")), "10.0.0.0/8")
    assert.strictEqual(list.match(ip("192.0.2.7")), "192.0.2.7")
    assert.strictEqual(list.match(ip("8.8.8.8")), "0.0.0.0/0")
  })
  it("IPv6 rules match IPv6 clients only; mapped clients match IPv4 rules", () => {
    assert.strictEqual(list.match(ip("2001:db8:1::5")), "2001:db8::/32")
    assert.strictEqual(list.match(ip("::1")), "::1/128")
    assert.strictEqual(list.match(ip("2001:db9::1")), undefined)
    assert.strictEqual(list.match(ip("::ffff:10.1.0.9")), "10.1.0.0/16")
  })
  it("an empty list matches nothing; /0 per family", () => {
    assert.strictEqual(compileCidrList([]).match(ip("1.2.3.4")), undefined)
    const all6 = compileCidrList(["::/0"])
    assert.strictEqual(all6.match(ip("2001:db8::1")), "::/0")
    assert.strictEqual(all6.match(ip("1.2.3.4")), undefined)
  })
})

describe("ipRanges (rate_limiting.exempt / trusted_proxies, allow_private_destinations) agrees with the schema's parser", () => {
  // every form the config schema accepts (parseCidr) must build a matcher: --check-config OK means start-up OK
  const forms = ["[::1]", "[::1]/128", "[2001:db8::]/32", "::ffff:10.8.0.0/120", "fe80::1%eth0", "192.0.2.7", "10.0.0.1/8", "0.0.0.0/0"]
  it("accepts bracketed IPv6 and every other form parseCidr accepts, with the same meaning", () => {
    for (const rule of forms) assert.notStrictEqual(parseCidr(rule), undefined, rule)
    const ranges = ipRanges(["[::1]", "[2001:db8::]/32", "::ffff:10.8.0.0/120"])
    assert.isTrue(ranges.has("::1"))
    assert.isTrue(ranges.has("2001:db8:5::1"))
    assert.isTrue(ranges.has("10.8.0.9"))
    assert.isTrue(ranges.has("::ffff:10.8.0.9"))
    assert.isFalse(ranges.has("::2"))
    assert.isFalse(ranges.has("10.8.1.9"))
    for (const rule of forms) assert.doesNotThrow(() => ipRanges([rule]), rule)
  })
  it("IPv4-mapped addresses asked about count as IPv4, in dotted and hex form", () => {
    const loopback = ipRanges(["127.0.0.0/8"])
    assert.isTrue(loopback.has("::ffff:127.0.0.1"))
    assert.isTrue(loopback.has("::ffff:7f00:1"))
    assert.isFalse(loopback.has("::1"))
    assert.isFalse(loopback.has("not an address"))
  })
})
