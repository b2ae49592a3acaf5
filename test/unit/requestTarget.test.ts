import { describe, expect, it } from "@effect/vitest"
import { classifyTarget, hostnameOf, isValidHost, parseAuthority } from "../../src/domain/requestTarget.ts"

describe("RFC 9112 §3.2 request-target forms", () => {
  it("origin-form", () => {
    expect(classifyTarget("/a?b", "GET", "h")).toEqual({ form: "origin", host: "h", path: "/a?b" })
  })
  it("absolute-form with default and explicit ports", () => {
    expect(classifyTarget("http://Example.COM/x?y", "GET", undefined)).toMatchObject({ form: "absolute", scheme: "http", hostname: "example.com", port: 80, authority: "example.com", path: "/x?y" })
    expect(classifyTarget("http://example.com:8080", "GET", undefined)).toMatchObject({ port: 8080, authority: "example.com:8080", path: "/" })
    expect(classifyTarget("https://[::1]:8443/p", "GET", undefined)).toMatchObject({ scheme: "https", hostname: "::1", port: 8443, authority: "[::1]:8443" })
    expect(classifyTarget("http://example.com?q=1", "GET", undefined)).toMatchObject({ path: "/?q=1" })
  })
  it("asterisk-form only for OPTIONS", () => {
    expect(classifyTarget("*", "OPTIONS", "h").form).toBe("asterisk")
    expect(classifyTarget("*", "GET", "h").form).toBe("invalid")
  })
  it("RFC 9110 §4.2.4: userinfo is refused", () => {
    expect(classifyTarget("http://user:pw@example.com/", "GET", undefined).form).toBe("invalid")
  })
  it("other schemes and malformed authorities are invalid", () => {
    expect(classifyTarget("ftp://example.com/", "GET", undefined).form).toBe("invalid")
    expect(classifyTarget("http://exa mple.com/", "GET", undefined).form).toBe("invalid")
    expect(classifyTarget("http://example.com:99999/", "GET", undefined).form).toBe("invalid")
  })
  it("authority parsing for CONNECT targets", () => {
    expect(parseAuthority("example.com:443")).toEqual({ hostname: "example.com", port: 443 })
    expect(parseAuthority("[2001:db8::1]:443")).toEqual({ hostname: "2001:db8::1", port: 443 })
    expect(parseAuthority("example.com:0")).toBeUndefined()
    expect(parseAuthority("a b:1")).toBeUndefined()
  })
  it("authority parsing agrees with the RFC 3986 §3.2.2 grammar (differential, against the regex it replaced)", () => {
    const grammar = /^(\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+)(?::(\d{1,5}))?$/
    const reference = (a: string) => {
      const m = grammar.exec(a)
      if (m === null) return undefined
      const port = m[2] === undefined ? undefined : Number(m[2])
      if (port !== undefined && (port < 1 || port > 65535)) return undefined
      return { hostname: (m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!).toLowerCase(), port }
    }
    const parts = ["", "a", "Example.COM", "[::1]", "[2001:DB8::1]", "[", "]", "[]", ":", ":0", ":1", ":80", ":65535", ":65536", ":123456", ":08080",
      "é", " ", "@", "/", "%41", "%", "%4", "%zz", "x.y-z_~", "[g::1]", "[::1", "::1", "\u0000", ":8a", "!$&'()*+,;="]
    let checked = 0
    for (const a of parts) for (const b of parts) for (const c of parts) {
      const s = a + b + c
      expect(parseAuthority(s), JSON.stringify(s)).toEqual(reference(s))
      checked++
    }
    expect(checked).toBe(parts.length ** 3)
  })
  it("RFC 9112 §3.2: an origin-form request whose Host is not uri-host[:port] is invalid (→ 400); an empty Host (and an empty port) is valid", () => {
    for (const host of [`x", for=6.6.6.6;host="y`, "attacker.com/.example.com", "attacker.com?.example.com", "a b.example.com", "x@y.example.com",
      "api.example.com:abc", "api.example.com:0", "api.example.com:65536", "api.example.com::", "a\\b", "%", "%zz.example.com", "é.example.com", "[::1", "[::1]x"]) {
      expect(isValidHost(host), host).toBe(false)
      expect(classifyTarget("/", "GET", host).form, host).toBe("invalid")
      expect(classifyTarget("*", "OPTIONS", host).form, host).toBe("invalid")
    }
    for (const host of ["", "example.com", "EXAMPLE.com.", "example.com:8080", "127.0.0.1:1", "[::1]:8443", "[2001:db8::1]", "under_score.test", "%41.test", "example.com:"]) {
      expect(isValidHost(host), host).toBe(true)
      expect(classifyTarget("/", "GET", host).form, host).toBe("origin")
    }
  })
  it("RFC 9110 §5.3 / §7.2: Host is a singleton — a comma-separated list in one value is invalid (a framework reading X-Forwarded-Host takes its first name, which the domain filter never judged)", () => {
    for (const host of ["malicious.com,good.com", "good.com, malicious.com", ",good.com"]) {
      expect(isValidHost(host), host).toBe(false)
      expect(classifyTarget("/", "GET", host).form, host).toBe("invalid")
    }
  })

  it("RFC 3986 §3.2.3: a Host with an empty port (\"host:\") names the host, for the filter and the router as for validation", () => {
    expect(hostnameOf("good.example:")).toBe("good.example")
    expect(hostnameOf("[::1]:")).toBe("::1")
    expect(hostnameOf("Good.Example.:8080")).toBe("good.example")
  })

  it("absolute-form: the client's Host is not checked (RFC 9112 §3.2.2: it is replaced by the target's authority)", () => {
    expect(classifyTarget("http://example.com/", "GET", "a b").form).toBe("absolute")
  })
})
