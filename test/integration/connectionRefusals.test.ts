/**
 * What the listener answers itself — a request head that never completes, a body the parser refuses,
 * a client that leaves mid-body — is answered as the README says and logged on exactly one access-log
 * line, whatever the timeouts. "Logged once" is checked after a barrier: a request on a new connection,
 * answered after the server has seen the earlier connection's end (where a second line used to come from).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect } from "node:net"
import { type Origin, startOrigin, startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

/** Waits until `proxy` has answered and logged a request made after everything before this call. */
const barrier = async (proxy: RunningProxy): Promise<void> => {
  const before = proxy.lines.length
  await (await fetch(`${proxy.url}/barrier`)).text()
  await expect.poll(() => proxy.entries().slice(before).some((e) => e.url === "/barrier")).toBe(true)
}

/** The access-log entries from `since` on, the barriers left out. */
const linesSince = (proxy: RunningProxy, since: number) => proxy.entries().slice(since).filter((e) => e.url !== "/barrier")

/** Content-Length and actual body length of a raw response. */
const bodyOf = (text: string) => ({
  declared: Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1),
  length: Buffer.byteLength(text.slice(text.indexOf("\r\n\r\n") + 4))
})

describe("request head not complete within timeouts.read → 408, close, one access-log line", () => {
  let origin: Origin
  beforeAll(async () => {
    origin = await startOrigin()
  })
  afterAll(async () => {
    await origin.close()
  })

  // write = read and write < read: the connection's inactivity timeout (the larger of the two) fires
  // before (or with) Node's head timer; write > read: the head timer fires first
  for (const timeouts of [{ read: "500ms", write: "500ms" }, { read: "600ms", write: "200ms" }, { read: "300ms", write: "900ms" }]) {
    it(`RFC 9110 §15.5.9: a partial head gets 408 and close, logged once with its request line, its duration and the bytes sent (read ${timeouts.read}, write ${timeouts.write})`, async () => {
      const proxy = await startProxy({ server: { timeouts }, routing: { default_backend: origin.url } })
      try {
        const r = await rawRequest(proxy.port, "GET /never-finished HTTP/1.1\r\nHost: a\r\n", 10_000)
        expect(statusOf(r.text)).toBe(408)
        expect(r.text).toMatch(/"error":"request_timeout"/)
        expect(r.closed).toBe(true)
        await barrier(proxy)
        const lines = linesSince(proxy, 0)
        expect(lines).toHaveLength(1)
        const body = bodyOf(r.text)
        expect(body.length).toBe(body.declared)
        // the whole request line had arrived: the line names it (README "Logs")
        expect(lines[0]).toMatchObject({ status: 408, outcome: "parse_error:ERR_HTTP_REQUEST_TIMEOUT", method: "GET", url: "/never-finished", kind: "invalid", bytes_in: 0, bytes_out: body.declared })
        expect(lines[0]!.duration_ms).toBeGreaterThan(0)
      } finally {
        await proxy.stop()
      }
    })
  }

  it("RFC 9110 §15.5.9: a keep-alive connection's next head that stops gets 408 at timeouts.read, even when the keep-alive timeout is shorter", async () => {
    // the keep-alive timer (idle + Node's 1 s) would fire before timeouts.read
    const proxy = await startProxy({ server: { timeouts: { read: "1500ms", write: "300ms", idle: "100ms" } }, routing: { default_backend: origin.url } })
    try {
      const text = await new Promise<string>((resolve) => {
        let text = ""
        let second = false
        const s = connect(proxy.port, "127.0.0.1", () => s.write("GET /first HTTP/1.1\r\nHost: a\r\n\r\n"))
        s.on("data", (c) => {
          text += c.toString("latin1")
          if (!second && /\r\n\r\n\{.*\}$/s.test(text)) {
            second = true
            text = ""
            s.write("GET /second HTTP/1.1\r\nHo")
          }
        })
        s.on("error", () => {})
        s.on("end", () => s.destroy())
        s.on("close", () => resolve(text))
      })
      expect(statusOf(text)).toBe(408)
      await barrier(proxy)
      const lines = linesSince(proxy, 0)
      expect(lines.map((e) => [e.url, e.status])).toEqual([["/first", 200], ["/second", 408]])
    } finally {
      await proxy.stop()
    }
  })

  it("RFC 9110 §15.5.9: a 408 names the request line that arrived over several reads; one not yet whole is logged as -", async () => {
    const proxy = await startProxy({ server: { timeouts: { read: "400ms", write: "400ms" } }, routing: { default_backend: origin.url } })
    try {
      // the request line in pieces, then a header that never ends
      const slow = await new Promise<string>((resolve) => {
        let text = ""
        const parts = ["GE", "T /slow", "loris?q=1 HTTP/1.1\r\n", "Host: a\r\nX-Pad: "]
        const s = connect(proxy.port, "127.0.0.1", () => {
          s.setNoDelay(true)
          const next = () => {
            const part = parts.shift()
            if (part !== undefined) s.write(part, () => setTimeout(next, 20))
          }
          next()
        })
        s.on("data", (c) => { text += c.toString("latin1") })
        s.on("error", () => {})
        s.on("close", () => resolve(text))
      })
      expect(statusOf(slow)).toBe(408)
      // a keep-alive connection: a first request answered, then a second whose request line stops halfway
      const cut = await rawRequest(proxy.port, "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two-never-ends", 10_000)
      expect(cut.text).toMatch(/ 408 /)
      await barrier(proxy)
      const lines = linesSince(proxy, 0)
      expect(lines.map((e) => [e.method, e.url, e.status])).toEqual([["GET", "/slowloris?q=1", 408], ["GET", "/one", 200], ["-", "-", 408]])
    } finally {
      await proxy.stop()
    }
  })

  it("a connection that never sends a byte is closed at timeouts.read with no answer and no access-log line (no request was made)", async () => {
    for (const timeouts of [{ read: "300ms", write: "300ms" }, { read: "300ms", write: "900ms" }]) {
      const proxy = await startProxy({ server: { timeouts }, routing: { default_backend: origin.url } })
      try {
        const r = await rawRequest(proxy.port, "", 10_000)
        expect(r.closed).toBe(true)
        expect(r.text).toBe("")
        await barrier(proxy)
        expect(linesSince(proxy, 0)).toEqual([])
      } finally {
        await proxy.stop()
      }
    }
  })
})

describe("a request whose body goes wrong is logged once, on its own line", () => {
  let origin: Origin
  let proxy: RunningProxy
  let heads: number
  let sawHead: () => void = () => {}
  let rawOrigin: { port: number; close: () => Promise<void> }
  beforeAll(async () => {
    origin = await startOrigin()
    // an origin that never answers; it tells when a request head reached it
    heads = 0
    rawOrigin = await startRawOrigin((s) => s.on("data", () => { heads++; sawHead() }))
    proxy = await startProxy({
      routing: { default_backend: origin.url, rules: [{ match: { path_prefix: "/stalled" }, forward: { target: `http://127.0.0.1:${rawOrigin.port}` } }] }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
    await rawOrigin.close()
  })

  it("RFC 9112 §6.3: a client that closes in the middle of a Content-Length body → one line, 499 client_abort (no parse-error line)", async () => {
    const since = proxy.lines.length
    const reached = new Promise<void>((resolve) => { sawHead = resolve })
    const s = connect(proxy.port, "127.0.0.1", () => s.write("POST /stalled/upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"))
    s.on("error", () => {})
    s.resume() // (reads what comes back, so the server's close is seen)
    await reached // the request is in flight: its head went upstream
    s.end()
    await new Promise((resolve) => s.on("close", resolve))
    await expect.poll(() => linesSince(proxy, since).length).toBeGreaterThan(0)
    await barrier(proxy)
    const lines = linesSince(proxy, since)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ method: "POST", url: "/stalled/upload", status: 499, outcome: "client_abort" })
  })

  it("RFC 9112 §7.1: a bad chunk in the body of a request in flight → 400 and close, logged once on that request's line", async () => {
    const since = proxy.lines.length
    const reached = new Promise<void>((resolve) => { sawHead = resolve })
    const seenBefore = heads
    let text = ""
    const s = connect(proxy.port, "127.0.0.1", () => s.write("POST /stalled/chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"))
    s.on("data", (c) => { text += c.toString("latin1") })
    s.on("error", () => {})
    s.on("end", () => s.destroy())
    if (heads === seenBefore) await reached
    s.write("zz\r\nabc\r\n0\r\n\r\n")
    await new Promise((resolve) => s.on("close", resolve))
    expect(statusOf(text)).toBe(400)
    await expect.poll(() => linesSince(proxy, since).length).toBeGreaterThan(0)
    await barrier(proxy)
    const lines = linesSince(proxy, since)
    expect(lines).toHaveLength(1)
    const body = bodyOf(text)
    expect(lines[0]).toMatchObject({ method: "POST", url: "/stalled/chunks", status: 400, outcome: "parse_error:HPE_INVALID_CHUNK_SIZE", bytes_out: body.declared })
  })
})

describe("a head the parser refuses is logged with no body bytes in", () => {
  it("README Logs: bytes_in counts bodies, so a refused head (400, 431) logs bytes_in 0 whatever its size", async () => {
    const proxy = await startProxy({ server: { limits: { max_header_bytes: 1024 } } })
    try {
      const smuggle = await rawRequest(proxy.port, "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
      expect(statusOf(smuggle.text)).toBe(400)
      const big = await rawRequest(proxy.port, `GET /big HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(1500)}\r\n\r\n`)
      expect(statusOf(big.text)).toBe(431)
      await barrier(proxy)
      const lines = linesSince(proxy, 0)
      expect(lines.map((e) => [e.url, e.status, e.bytes_in, e.kind])).toEqual([["/cl", 400, 0, "invalid"], ["/big", 431, 0, "invalid"]])
    } finally {
      await proxy.stop()
    }
  })
})
