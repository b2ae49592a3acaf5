import { describe, expect, it } from "@effect/vitest"
import { connectionTokens, downstreamResponseHeaders, upstreamRequestHeaders } from "../../src/domain/hopHeaders.ts"

const info = {
  clientIp: "10.0.0.7",
  proto: "http" as const,
  host: "app.example.com",
  via: "1.1 gatehouse",
  requestId: "rid-1",
  maxForwards: undefined,
  contentLength: undefined
}

const pairs = (flat: ReadonlyArray<string>) => {
  const out: Array<[string, string]> = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), flat[i + 1]!])
  return out
}
const names = (flat: ReadonlyArray<string>) => pairs(flat).map(([n]) => n)

describe("RFC 9110 §7.6.1 hop-by-hop fields", () => {
  it("drops the fixed hop-by-hop set and Proxy-Authorization from requests", () => {
    const raw = ["Connection", "keep-alive", "Keep-Alive", "timeout=5", "Proxy-Connection", "keep-alive", "TE", "trailers",
      "Transfer-Encoding", "chunked", "Upgrade", "h2c", "Proxy-Authorization", "Basic eA==", "Accept", "*/*"]
    const out = names(upstreamRequestHeaders(raw, "backend:80", info))
    for (const n of ["connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "proxy-authorization"]) {
      expect(out).not.toContain(n)
    }
    expect(out).toContain("accept")
  })
  it("drops the fields named in Connection", () => {
    const raw = ["Connection", "X-Secret, x-other", "X-Secret", "1", "X-Other", "2", "X-Kept", "3"]
    const out = names(upstreamRequestHeaders(raw, "b", info))
    expect(out).not.toContain("x-secret")
    expect(out).not.toContain("x-other")
    expect(out).toContain("x-kept")
  })
  it("keeps duplicates and order of end-to-end fields", () => {
    const raw = ["Accept", "a", "X-Dup", "1", "X-Dup", "2"]
    const out = pairs(upstreamRequestHeaders(raw, "b", info)).filter(([n]) => n === "x-dup").map(([, v]) => v)
    expect(out).toEqual(["1", "2"])
  })
  it("parses Connection tokens case-insensitively, ignoring close/keep-alive", () => {
    expect([...(connectionTokens(["Close, X-A", " x-b "]) ?? [])]).toEqual(["x-a", "x-b"])
  })
  it("keeps a response field's repeated lines together (Set-Cookie, RFC 9110 §5.3) and leaves out absent values", () => {
    const out = downstreamResponseHeaders({ "set-cookie": ["a=1", "b=2"], "x-none": undefined, "content-length": "3" }, "1.1 gatehouse")
    expect(out).toEqual(["set-cookie", ["a=1", "b=2"], "content-length", "3", "via", "1.1 gatehouse"])
  })
  it("RFC 9110 §8.6: no Content-Length on a 204 or a 1xx; a 304 and a 200 keep theirs", () => {
    const headers = { "content-length": "5", "x-a": "1" }
    expect(downstreamResponseHeaders(headers, "1.1 gatehouse", 204)).toEqual(["x-a", "1", "via", "1.1 gatehouse"])
    expect(downstreamResponseHeaders(headers, "1.1 gatehouse", 103)).toEqual(["x-a", "1", "via", "1.1 gatehouse"])
    expect(downstreamResponseHeaders(headers, "1.1 gatehouse", 100)).toEqual(["x-a", "1", "via", "1.1 gatehouse"])
    expect(downstreamResponseHeaders(headers, "1.1 gatehouse", 304)).toEqual(["content-length", "5", "x-a", "1", "via", "1.1 gatehouse"])
    expect(downstreamResponseHeaders(headers, "1.1 gatehouse", 200)).toEqual(["content-length", "5", "x-a", "1", "via", "1.1 gatehouse"])
  })
  it("removes hop-by-hop and Connection-named fields from responses and appends Via (§7.6.3)", () => {
    const out = downstreamResponseHeaders({ connection: "x-internal", "x-internal": "1", "keep-alive": "timeout=5", "transfer-encoding": "chunked", via: "1.0 origin-cache", "content-type": "text/plain" }, "1.1 gatehouse")
    expect(out).toEqual(["content-type", "text/plain", "via", "1.0 origin-cache, 1.1 gatehouse"])
  })
})

describe("RFC 9112 §3.2.2 Host and forwarding fields", () => {
  it("replaces Host with the target authority and adds Via / X-Forwarded-* / Forwarded", () => {
    const raw = ["Host", "client-said.example", "Via", "1.0 first", "X-Forwarded-For", "1.2.3.4"]
    const out = Object.fromEntries(pairs(upstreamRequestHeaders(raw, "backend:8080", info)))
    expect(out.host).toBe("backend:8080")
    expect(out.via).toBe("1.0 first, 1.1 gatehouse")
    expect(out["x-forwarded-for"]).toBe("1.2.3.4, 10.0.0.7")
    expect(out["x-forwarded-proto"]).toBe("http")
    expect(out["x-forwarded-host"]).toBe("app.example.com")
    expect(out.forwarded).toBe(`for=10.0.0.7;host="app.example.com";proto=http`)
    expect(out["x-request-id"]).toBe("rid-1")
  })
  it("leaves Host to the connection pool when it writes the same authority (no target host given): the client's Host is still dropped", () => {
    const raw = ["Host", "client-said.example", "Accept", "*/*"]
    const out = names(upstreamRequestHeaders(raw, undefined, info))
    expect(out).not.toContain("host")
    expect(out).toContain("accept")
  })
  it("quotes IPv6 clients in Forwarded (RFC 7239 §6)", () => {
    const out = Object.fromEntries(pairs(upstreamRequestHeaders([], "b", { ...info, clientIp: "::1" })))
    expect(out.forwarded).toBe(`for="[::1]";host="app.example.com";proto=http`)
  })
  it("threat: Forwarded injection — RFC 7239 §4: the host is a quoted-string with \" and \\ escaped, so it cannot close the string and add an element", () => {
    const out = Object.fromEntries(pairs(upstreamRequestHeaders([], "b", { ...info, host: `x", for=6.6.6.6;host="y\\` })))
    expect(out.forwarded).toBe(`for=10.0.0.7;host="x\\", for=6.6.6.6;host=\\"y\\\\";proto=http`)
    expect(Object.fromEntries(pairs(upstreamRequestHeaders([], "b", { ...info, host: "app.example.com:8443" }))).forwarded)
      .toBe(`for=10.0.0.7;host="app.example.com:8443";proto=http`)
  })
  it("sends the decremented Max-Forwards (RFC 9110 §7.6.2) and drops Expect (handled by the proxy)", () => {
    const raw = ["Max-Forwards", "5", "Expect", "100-continue"]
    const out = Object.fromEntries(pairs(upstreamRequestHeaders(raw, "b", { ...info, maxForwards: 4 })))
    expect(out["max-forwards"]).toBe("4")
    expect(out.expect).toBeUndefined()
  })
})
