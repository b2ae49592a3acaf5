/**
 * Whose wait is it? The listener's inactivity timeout (max(timeouts.read, timeouts.write)) must not cut
 * a connection whose client is only waiting on the upstream: with read ≥ write (the defaults), it
 * fired before the upstream timers and a slow origin got `499 write_timeout` instead of the 504 the
 * README promises (RFC 9110 §15.6.5). Real origins that stall at each point of an exchange.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { request } from "node:http"
import { connect, type Socket } from "node:net"
import { startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

/** Body bytes the origin sends before its gap (over the default hold_bytes, 64 KB). */
const GAP_AT = 100_000

interface Outcome {
  readonly status: number
  readonly body: number
  readonly error: boolean
}

const fetchVia = (port: number, path: string, upload?: number): Promise<Outcome> =>
  new Promise((resolve) => {
    let status = 0
    let body = 0
    const req = request({ host: "127.0.0.1", port, path, method: upload === undefined ? "GET" : "POST", agent: false, headers: upload === undefined ? {} : { "content-length": String(upload) } }, (res) => {
      status = res.statusCode ?? 0
      res.on("data", (c: Buffer) => { body += c.length })
      res.on("end", () => resolve({ status, body, error: false }))
      res.on("error", () => resolve({ status, body, error: true }))
    })
    req.on("error", () => resolve({ status, body, error: true }))
    if (upload === undefined) req.end()
    else {
      // written in pieces until the proxy stops taking them (it must not be the one blamed)
      const piece = Buffer.alloc(64 * 1024, 120)
      let sent = 0
      const pump = () => {
        while (sent < upload) {
          sent += piece.length
          if (!req.write(piece)) return void req.once("drain", pump)
        }
        req.end()
      }
      pump()
    }
  })

describe("upstream stalls are the upstream's: 504 / upstream_timeout, never blamed on the client", () => {
  let origin: { port: number; close: () => Promise<void> }
  let proxy: RunningProxy
  const held: Array<Socket> = []
  beforeAll(async () => {
    origin = await startRawOrigin((socket) => {
      held.push(socket)
      socket.once("data", (d: Buffer) => {
        const line = d.toString("latin1")
        if (line.startsWith("GET /no-head")) return // never answers
        if (line.startsWith("GET /body-gap")) {
          // more than inspection holds back (hold_bytes), so the head goes out; then nothing
          socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${GAP_AT * 2}\r\n\r\n`)
          socket.write(Buffer.alloc(GAP_AT, 97))
          return
        }
        if (line.startsWith("POST /not-reading")) socket.pause() // takes no more of the upload
      })
    })
    // read = write: the defaults' shape (30s/30s), shortened
    proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${origin.port}` }, server: { timeouts: { read: "700ms", write: "700ms" }, limits: { max_body_bytes: "256MB" } } })
  })
  afterAll(async () => {
    await proxy.stop()
    for (const s of held) s.destroy()
    await origin.close()
  })

  const entry = async (url: string) => {
    await expect.poll(() => proxy.entries().find((e) => e.url === url), { timeout: 5000 }).toBeDefined()
    return proxy.entries().find((e) => e.url === url)!
  }

  it("RFC 9110 §15.6.5: an origin that never sends its head → 504 at timeouts.read (was a cut connection logged 499 write_timeout)", async () => {
    const r = await fetchVia(proxy.port, "/no-head")
    expect(r.status).toBe(504)
    expect(await entry("/no-head")).toMatchObject({ status: 504, outcome: "upstream_timeout" })
  })

  it("a gap in the origin's body → the client's response is cut, logged upstream_timeout (was write_timeout)", async () => {
    const r = await fetchVia(proxy.port, "/body-gap")
    expect(r).toMatchObject({ status: 200, body: GAP_AT, error: true })
    expect(await entry("/body-gap")).toMatchObject({ status: 200, outcome: "upstream_timeout" })
  })

  it("RFC 9110 §15.6.5: an origin that stops reading an upload → 504 (was 408 read_timeout, blaming the client)", async () => {
    const r = await fetchVia(proxy.port, "/not-reading", 64 * 1024 * 1024)
    expect(r.status).toBe(504)
    expect(await entry("/not-reading")).toMatchObject({ status: 504, outcome: "upstream_timeout" })
  })

  it("a full-duplex exchange whose client stops reading is the client's stall (write_timeout), not the origin's, though the origin then stops taking the body", async () => {
    // echoes the chunked body as a chunked response, byte for byte, with backpressure (Node's own
    // http server buffers a piped response without bound when its client stops reading)
    const echo = await startRawOrigin((s) => {
      s.once("data", (d: Buffer) => {
        s.write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        s.write(d.subarray(d.indexOf("\r\n\r\n") + 4))
        s.pipe(s)
      })
    })
    const p = await startProxy({ routing: { default_backend: `http://127.0.0.1:${echo.port}` }, server: { timeouts: { read: "700ms", write: "700ms" }, limits: { max_body_bytes: "256MB" } } })
    const sock = connect(p.port, "127.0.0.1")
    try {
      sock.on("error", () => {})
      sock.pause() // reads nothing, ever
      sock.write("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
      const chunk = Buffer.concat([Buffer.from("4000\r\n"), Buffer.alloc(0x4000, 120), Buffer.from("\r\n")])
      const pump = () => { while (!sock.destroyed && sock.write(chunk)); }
      sock.on("drain", pump)
      pump()
      await expect.poll(() => p.entries().find((e) => e.url === "/echo"), { timeout: 10_000 }).toBeDefined()
      expect(p.entries().find((e) => e.url === "/echo")).toMatchObject({ status: 200, outcome: "write_timeout" })
    } finally {
      sock.destroy()
      await p.stop()
      await echo.close()
    }
  })
})
