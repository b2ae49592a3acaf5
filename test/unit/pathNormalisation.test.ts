import { describe, expect, it } from "@effect/vitest"
import { classifyTarget, removeDotSegments } from "../../src/domain/requestTarget.ts"

describe("RFC 3986 §5.2.4 dot-segment removal of origin-form paths (threat: path traversal out of a backend's base path)", () => {
  it("removes '.' and '..' segments, keeping the query as sent", () => {
    expect(removeDotSegments("/a/./b/../c")).toBe("/a/c")
    expect(removeDotSegments("/a/b/..")).toBe("/a/")
    expect(removeDotSegments("/a/.")).toBe("/a/")
    expect(removeDotSegments("/a/..")).toBe("/")
    expect(removeDotSegments("/./")).toBe("/")
    expect(removeDotSegments("/a//../b")).toBe("/a/b")
    expect(removeDotSegments("/a/../b?x=/../../y")).toBe("/b?x=/../../y")
  })

  it("§6.2.2.2: %2e (any case) is a dot, as the origin decodes it", () => {
    expect(removeDotSegments("/a/%2e%2e/b")).toBe("/b")
    expect(removeDotSegments("/a/%2E./b")).toBe("/b")
    expect(removeDotSegments("/a/.%2E/b")).toBe("/b")
    expect(removeDotSegments("/a/%2e/b")).toBe("/a/b")
  })

  it("a path that climbs above the root is refused (undefined → 400, as nginx)", () => {
    for (const p of ["/..", "/../secret", "/%2e%2e/secret", "/a/../../x", "/./../x", "/.%2e/x?q"]) expect(removeDotSegments(p), p).toBeUndefined()
    expect(classifyTarget("/../secret", "GET", "h")).toMatchObject({ form: "invalid" })
    expect(classifyTarget("/%2e%2e/secret", "GET", "h")).toMatchObject({ form: "invalid" })
  })

  it("segments that only look like dots are kept as they are", () => {
    for (const p of ["/", "/index.html", "/.well-known/x", "/a/.../b", "/a/..b/c", "/a/b../c", "/%2e%2e%2e", "/a/%2ex", "/a/%2", "/a/b%2fc", "/a;v=1/b", "/x%5cy", "/a/%252e%252e/b"]) {
      expect(removeDotSegments(p), p).toBe(p)
    }
  })

  it("threat: hidden dot-segments — a \"..\" behind %2f / %5c (a decoding backend reads them as separators) or a ;parameter (Tomcat/Spring read \"..;\" as \"..\") is refused, as nginx refuses them", () => {
    for (const p of ["/a/%2f../b", "/..;/x", "/..;/..;/secret", "/..%2f..%2fsecret", "/a/%2e%2e%5c%2e%2e%5csecret", "/x..%2F..%2F..%2Fsecret", "/a/.;/b", "/a/..%5Cb"]) {
      expect(removeDotSegments(p), p).toBeNull()
      expect(classifyTarget(p, "GET", "h"), p).toMatchObject({ form: "invalid" })
    }
  })

  it("origin-form targets carry the normalised path", () => {
    expect(classifyTarget("/v1/../admin?x", "GET", "h")).toEqual({ form: "origin", host: "h", path: "/admin?x" })
  })

  it("agrees with the WHATWG URL parser (what undici and browsers do), differential", () => {
    const parts = ["", "a", ".", "..", "%2e", "%2E", ".%2e", "%2e.", "%2E%2e", "...", ".a", "a.", "%2", "%2ex", "b%2e"]
    let checked = 0
    for (const a of parts) for (const b of parts) for (const c of parts) for (const q of ["", "?q=/../x"]) {
      const path = `/${a}/${b}/${c}${q}`
      const ours = removeDotSegments(path)
      // prefixed with a base path, as a backend's: the reference climbs out of it exactly when ours refuses
      const ref = new URL(`/base${path}`, "http://h")
      const escaped = !(ref.pathname === "/base" || ref.pathname.startsWith("/base/"))
      if (escaped) expect(ours, path).toBeUndefined()
      else expect(`/base${ours}`, path).toBe(ref.pathname + ref.search)
      checked++
    }
    expect(checked).toBe(parts.length ** 3 * 2)
  })

  it("threat: backslash traversal — a \\ in the path (no path character, RFC 3986 §3.3; IIS reads it as /) is refused, in the query it is left alone", () => {
    for (const p of ["/..\\secret", "/a\\b", "/public/..\\..\\x"]) {
      expect(removeDotSegments(p), p).toBeNull()
      expect(classifyTarget(p, "GET", "h"), p).toMatchObject({ form: "invalid" })
    }
    expect(removeDotSegments("/a?x=\\")).toBe("/a?x=\\")
  })
})
