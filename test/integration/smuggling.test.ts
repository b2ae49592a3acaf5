import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

/** Each case must be refused with 400 and a closed connection, and nothing may reach the origin. */
const CASES: ReadonlyArray<readonly [string, string]> = [
  ["RFC 9112 §6.1: Content-Length together with Transfer-Encoding (CL.TE)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"],
  ["RFC 9112 §6.3: differing duplicate Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc"],
  ["RFC 9112 §6.3: Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc"],
  ["RFC 9112 §6.3: signed Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc"],
  ["RFC 9112 §6.1: Transfer-Encoding without final chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc"],
  ["RFC 9112 §6.1: chunked applied twice / not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"],
  ["RFC 9112 §6.1: obfuscated Transfer-Encoding value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"],
  ["RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
  ["RFC 9112 §5.2: obs-fold in a header", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"],
  ["RFC 9112 §2.2: bare CR in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n"],
  ["RFC 9110 §5.5: NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u0000c\r\n\r\n"],
  ["RFC 9112 §5.1: whitespace between field name and colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n"],
  ["RFC 9112 §3.2: two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"],
  ["RFC 9112 §3.2: HTTP/1.1 request without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n"],
  ["RFC 9112 §7.1: bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"],
  ["RFC 9112 §2.2: bare LF line endings in the request line", "GET / HTTP/1.1\nHost: a\n\n"],
  ["RFC 9112 §3: garbage request line", "HELLO\r\n\r\n"]
]

describe("request smuggling and framing conflicts → 400 and close", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({ routing: { default_backend: origin.url } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  for (const [name, bytes] of CASES) {
    it(name, async () => {
      const before = origin.seen.length
      const r = await rawRequest(proxy.port, bytes)
      expect(statusOf(r.text)).toBe(400)
      expect(r.text).toMatch(/"error":"bad_request"/)
      expect(r.closed).toBe(true)
      expect(origin.seen.length).toBe(before)
    })
  }

  it("RFC 9112 §6.3: a framing error is logged once, with the method and target of its request line and the bytes of the 400 sent", async () => {
    const before = proxy.lines.length
    const r = await rawRequest(proxy.port, "POST /framing HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
    expect(statusOf(r.text)).toBe(400)
    const declared = Number(/content-length: (\d+)/i.exec(r.text)?.[1])
    expect(Buffer.byteLength(r.text.slice(r.text.indexOf("\r\n\r\n") + 4))).toBe(declared)
    // barrier: a request on a new connection, logged after the server saw the first one end
    await (await fetch(`${proxy.url}/barrier`)).text()
    await expect.poll(() => proxy.entries().slice(before).some((e) => e.url === "/barrier")).toBe(true)
    const lines = proxy.entries().slice(before).filter((e) => e.url !== "/barrier")
    expect(lines).toMatchObject([{ method: "POST", url: "/framing", status: 400, outcome: "parse_error:HPE_UNEXPECTED_CONTENT_LENGTH", kind: "invalid", bytes_out: declared }])
  })

  it("the proxy keeps serving other clients after all of the above", async () => {
    const res = await fetch(`${proxy.url}/still-alive`)
    expect(res.status).toBe(200)
  })

  it("RFC 9112 §6.3: a response with conflicting framing from the upstream becomes 502", async () => {
    const { startRawOrigin } = await import("../fixtures/origins.ts")
    const bad = await startRawOrigin((s) => s.once("data", () => s.end("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")))
    const p2 = await startProxy({ routing: { default_backend: `http://127.0.0.1:${bad.port}` } })
    const r = await rawRequest(p2.port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    expect(statusOf(r.text)).toBe(502)
    await p2.stop()
    await bad.close()
  })
})
