import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect } from "node:net"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

describe("input limits", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({
      server: { timeouts: { read: "700ms" }, limits: { max_url_bytes: 1024, max_header_bytes: 4096, max_body_bytes: 1000 } },
      routing: { default_backend: origin.url }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("RFC 9112 §3: a request-target over max_url_bytes → 414", async () => {
    const r = await rawRequest(proxy.port, `GET /${"a".repeat(2000)} HTTP/1.1\r\nHost: a\r\n\r\n`)
    expect(statusOf(r.text)).toBe(414)
  })

  it("RFC 9112 §3: a request line over the whole header limit is still 414, not 431", async () => {
    const r = await rawRequest(proxy.port, `GET /${"a".repeat(6000)} HTTP/1.1\r\nHost: a\r\n\r\n`)
    expect(statusOf(r.text)).toBe(414)
  })

  it("RFC 6585 §5: a header section over max_header_bytes → 431 and close", async () => {
    const r = await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"b".repeat(5000)}\r\n\r\n`)
    expect(statusOf(r.text)).toBe(431)
    expect(r.closed).toBe(true)
  })

  it("RFC 6585 §5 / RFC 9112 §2.1: max_header_bytes counts the header section (each field line with its CRLF, and the final CRLF): the limit is accepted, one byte more → 431", async () => {
    for (const [target, host] of [["/exact", "a"], [`${origin.url}/exact`, `127.0.0.1:${origin.port}`]] as const) {
      const head = (size: number) => {
        const fixed = `Host: ${host}\r\nConnection: close\r\n`
        const pad = "p".repeat(size - fixed.length - "X-Pad: \r\n".length - "\r\n".length)
        const section = `${fixed}X-Pad: ${pad}\r\n\r\n`
        expect(section.length).toBe(size)
        return `GET ${target} HTTP/1.1\r\n${section}`
      }
      const at = await rawRequest(proxy.port, head(4096))
      expect(statusOf(at.text)).toBe(200)
      const before = proxy.lines.length
      const over = await rawRequest(proxy.port, head(4097))
      expect(statusOf(over.text)).toBe(431)
      expect(over.text).toMatch(/header section exceeds 4096 bytes/)
      expect(over.closed).toBe(true)
      expect(proxy.entries().slice(before)).toMatchObject([{ method: "GET", url: target, status: 431, outcome: "HeadersTooLarge" }])
    }
  })

  it("RFC 9110 §15.5.14: Content-Length over max_body_bytes → 413 before the body is read", async () => {
    const before = origin.seen.length
    const r = await rawRequest(proxy.port, `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n`)
    expect(statusOf(r.text)).toBe(413)
    expect(r.closed).toBe(true)
    expect(origin.seen.length).toBe(before)
  })

  it("RFC 9110 §15.5.14: a chunked body is counted and cut at max_body_bytes → 413", async () => {
    const chunk = "x".repeat(400)
    const body = `190\r\n${chunk}\r\n190\r\n${chunk}\r\n190\r\n${chunk}\r\n0\r\n\r\n`
    const r = await rawRequest(proxy.port, `POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`)
    expect(statusOf(r.text)).toBe(413)
    expect(r.closed).toBe(true)
    expect(proxy.entries().at(-1)).toMatchObject({ status: 413, outcome: "PayloadTooLarge" })
  })

  it("a chunked body under the limit passes", async () => {
    const r = await rawRequest(proxy.port, `POST /ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`)
    expect(statusOf(r.text)).toBe(200)
  })

  it("a body that stops arriving: the read timeout cuts the connection, aborts the upstream request, and the access log says 408 read_timeout (not a client abort)", async () => {
    // the connection's inactivity limit is the larger of the read and write timeouts
    const quick = await startProxy({ server: { timeouts: { read: "500ms", write: "500ms" } }, routing: { default_backend: origin.url } })
    try {
      const closed = await new Promise<boolean>((resolve) => {
        const s = connect(quick.port, "127.0.0.1", () => s.write("POST /slow-body HTTP/1.1\r\nHost: a\r\nContent-Length: 900\r\n\r\n0123456789"))
        s.on("close", () => resolve(true))
        s.on("error", () => {})
      })
      expect(closed).toBe(true)
      await expect.poll(() => quick.entries().find((e) => e.url === "/slow-body")).toBeDefined()
      const entry = quick.entries().find((e) => e.url === "/slow-body")!
      expect(entry.status).toBe(408)
      expect(entry.outcome).toBe("read_timeout")
      // the origin got the request head and part of the body, never all of it: its request was aborted
      expect(origin.seen.some((r) => r.url === "/slow-body")).toBe(false)
    } finally {
      await quick.stop()
    }
  })

  it("a client that stops reading a large response: the write timeout cuts it, and the access log keeps the status sent, 200 write_timeout", async () => {
    const big = await startOrigin((_req, res) => {
      const mb = Buffer.alloc(1 << 20, 97)
      let n = 0
      res.writeHead(200, { "content-length": 64 * mb.length })
      const pump = () => {
        while (n < 64 && !res.destroyed) {
          n++
          if (!res.write(mb)) return void res.once("drain", pump)
        }
        res.end()
      }
      pump()
    })
    const quick = await startProxy({ server: { timeouts: { read: "500ms", write: "500ms" } }, routing: { default_backend: big.url } })
    try {
      const s = connect(quick.port, "127.0.0.1", () => s.write("GET /big HTTP/1.1\r\nHost: a\r\n\r\n"))
      s.pause() // never reads: the proxy's writes back up until the timeout
      s.on("error", () => {})
      await expect.poll(() => quick.entries().find((e) => e.url === "/big"), { timeout: 5000 }).toBeDefined()
      const entry = quick.entries().find((e) => e.url === "/big")!
      expect(entry.outcome).toBe("write_timeout")
      expect(entry.status).toBe(200)
      // what was relayed before the cut, not 0 and not the whole 64 MiB
      expect(entry.bytes_out).toBeGreaterThan(0)
      expect(entry.bytes_out).toBeLessThan(64 * (1 << 20))
      s.destroy()
    } finally {
      await quick.stop()
      await big.close()
    }
  })

  it("slowloris: a client dribbling its header section gets 408 and is dropped after the read timeout (RFC 9110 §15.5.9)", async () => {
    const outcome = await new Promise<{ closed: boolean; text: string }>((resolve) => {
      const s = connect(proxy.port, "127.0.0.1", () => s.write("GET / HTTP/1.1\r\nHost: a\r\n"))
      let text = ""
      const drip = setInterval(() => s.writable && s.write("X-Drip: 1\r\n"), 100)
      const guard = setTimeout(() => { clearInterval(drip); s.destroy(); resolve({ closed: false, text }) }, 6000)
      s.on("data", (c) => (text += c))
      s.on("error", () => {})
      s.on("close", () => { clearInterval(drip); clearTimeout(guard); resolve({ closed: true, text }) })
    })
    expect(outcome.closed).toBe(true)
    expect(statusOf(outcome.text)).toBe(408)
  })
})
