import { assert, describe, it } from "@effect/vitest"
import { normaliseHost } from "../../src/domain/hostName.ts"

describe("normaliseHost (one spelling per host, so rules cannot be bypassed)", () => {
  it("lowercases and drops trailing dots (FQDN form)", () => {
    assert.strictEqual(normaliseHost("EXAMPLE.com"), "example.com")
    assert.strictEqual(normaliseHost("example.com."), "example.com")
    assert.strictEqual(normaliseHost("Example.COM.."), "example.com")
  })
  it("IDN → punycode A-labels (UTS #46)", () => {
    assert.strictEqual(normaliseHost("Bücher.de"), "xn--bcher-kva.de")
    assert.strictEqual(normaliseHost("xn--bcher-kva.de"), "xn--bcher-kva.de")
  })
  it("decodes percent-escapes like the WHATWG host parser", () => {
    assert.strictEqual(normaliseHost("mal%69cious.com"), "malicious.com")
  })
  it("IPv4 literals in any WHATWG spelling → dotted quad", () => {
    assert.strictEqual(normaliseHost("127.0.0.1"), "127.0.0.1")
    assert.strictEqual(normaliseHost("0x7f.1"), "127.0.0.1")
    assert.strictEqual(normaliseHost("2130706433"), "127.0.0.1")
    // leading zeros are octal, out-of-range parts are no address: neither takes the dotted-quad fast path
    assert.strictEqual(normaliseHost("127.0.0.010"), "127.0.0.8")
    assert.strictEqual(normaliseHost("0177.0.0.1"), "127.0.0.1")
    assert.strictEqual(normaliseHost("255.255.255.255"), "255.255.255.255")
    assert.strictEqual(normaliseHost("256.1.1.1"), undefined)
  })
  it("IPv6 literals with or without brackets → compressed lowercase; IPv4-mapped → IPv4", () => {
    assert.strictEqual(normaliseHost("[::1]"), "::1")
    assert.strictEqual(normaliseHost("0:0:0:0:0:0:0:1"), "::1")
    assert.strictEqual(normaliseHost("[2001:DB8::0:1]"), "2001:db8::1")
    assert.strictEqual(normaliseHost("[::ffff:10.0.0.1]"), "10.0.0.1")
    assert.strictEqual(normaliseHost("::ffff:a00:1"), "10.0.0.1")
  })
  it("rejects what is not a host", () => {
    for (const bad of ["", "exa mple.com", "1.2.3.4.5", "[::1", "[zz::1]", "."]) assert.strictEqual(normaliseHost(bad), undefined, bad)
  })
})
