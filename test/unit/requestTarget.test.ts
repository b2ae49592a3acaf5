import { describe, expect, it } from "@effect/vitest"
import { classifyTarget, parseAuthority } from "../../src/domain/requestTarget.ts"

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
})
