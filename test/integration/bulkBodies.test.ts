/**
 * Bulk bodies through the reverse proxy: large uploads (Content-Length and chunked) and a large
 * download arrive intact, streamed, and every chunk is reported to the Reclaimer
 * (services/Reclaimer.ts: relayed buffers are freed young; its counting is unit-tested).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash, randomBytes } from "node:crypto"
import { request } from "node:http"
import type { Writable } from "node:stream"
import { startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

const MiB = 1024 * 1024
const BLOCK = randomBytes(MiB)
const digestOf = (blocks: number) => {
  const h = createHash("sha256")
  for (let i = 0; i < blocks; i++) h.update(BLOCK)
  return h.digest("hex")
}

/** Writes `blocks` copies of BLOCK with backpressure, then ends the stream. */
const writeBlocks = (out: Writable, blocks: number): void => {
  let left = blocks
  const pump = (): void => {
    while (left > 0) {
      left--
      if (!out.write(BLOCK)) return void out.once("drain", pump)
    }
    out.end()
  }
  pump()
}

/** Sends `blocks` MiB (Content-Length, or chunked when `chunked`); resolves with the status and body. */
const upload = (port: number, blocks: number, chunked: boolean): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const headers: Record<string, string> = chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(blocks * MiB) }
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/upload", headers, agent: false }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (body += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on("error", reject)
    writeBlocks(req, blocks)
  })

describe("bulk bodies through the reverse proxy (streamed, Reclaimer)", () => {
  let proxy: RunningProxy
  let origin: { port: number; close: () => Promise<void> }
  beforeAll(async () => {
    // raw HTTP origin: POST → sha256 and length of the body; GET /download/N → N MiB, Content-Length
    origin = await startRawOrigin((s) => {
      let head = ""
      const onData = (c: Buffer) => {
        head += c.toString("latin1")
        const end = head.indexOf("\r\n\r\n")
        if (end < 0) return
        s.off("data", onData)
        const line = head.slice(0, head.indexOf("\r\n"))
        if (line.startsWith("GET /download/")) {
          const blocks = Number(line.split(" ")[1]!.split("/")[2])
          s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${blocks * MiB}\r\nconnection: close\r\n\r\n`)
          return writeBlocks(s, blocks)
        }
        // a POST: hand the already-read body bytes and the rest to an HTTP parser-free counter
        const chunked = /transfer-encoding: chunked/i.test(head)
        const h = createHash("sha256")
        let n = 0
        let rest = Buffer.from(head.slice(end + 4), "latin1")
        const expected = chunked ? Infinity : Number(/content-length: (\d+)/i.exec(head)![1])
        let raw = Buffer.alloc(0)
        const finish = () => {
          const body = `${h.digest("hex")} ${n}`
          s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`)
        }
        const take = (c: Buffer) => {
          if (!chunked) {
            h.update(c)
            n += c.length
            if (n >= expected) finish()
            return
          }
          // chunked: decode size lines (no extensions or trailers from Node's client)
          raw = Buffer.concat([raw, c])
          for (;;) {
            const nl = raw.indexOf("\r\n")
            if (nl < 0) return
            const size = parseInt(raw.subarray(0, nl).toString("latin1"), 16)
            if (size === 0) return finish()
            if (raw.length < nl + 2 + size + 2) return
            const data = raw.subarray(nl + 2, nl + 2 + size)
            h.update(data)
            n += size
            raw = raw.subarray(nl + 2 + size + 2)
          }
        }
        if (rest.length > 0) take(rest)
        rest = Buffer.alloc(0)
        s.on("data", take)
      }
      s.on("data", onData)
    })
    proxy = await startProxy({ server: { limits: { max_body_bytes: "64MB" } }, routing: { default_backend: `http://127.0.0.1:${origin.port}` } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  for (const [framing, chunked] of [["Content-Length", false], ["chunked (RFC 9112 §7.1)", true]] as const) {
    it(`a 40 MiB ${framing} upload arrives intact; its chunks reach the Reclaimer`, async () => {
      const before = proxy.relayedBytes()
      const r = await upload(proxy.port, 40, chunked)
      expect(r.status).toBe(200)
      expect(r.body).toBe(`${digestOf(40)} ${40 * MiB}`)
      expect(proxy.relayedBytes() - before).toBeGreaterThanOrEqual(40 * MiB)
    })
  }

  it("a 40 MiB download arrives intact; its chunks reach the Reclaimer", async () => {
    const before = proxy.relayedBytes()
    const got = await new Promise<{ status: number; digest: string; n: number }>((resolve, reject) => {
      request({ host: "127.0.0.1", port: proxy.port, path: "/download/40", agent: false }, (res) => {
        const h = createHash("sha256")
        let n = 0
        res.on("data", (c: Buffer) => { h.update(c); n += c.length })
        res.on("end", () => resolve({ status: res.statusCode ?? 0, digest: h.digest("hex"), n }))
      }).on("error", reject).end()
    })
    expect(got).toEqual({ status: 200, digest: digestOf(40), n: 40 * MiB })
    expect(proxy.relayedBytes() - before).toBeGreaterThanOrEqual(40 * MiB)
  })

  it("a small Content-Length body is handed over as is and still arrives intact", async () => {
    const r = await upload(proxy.port, 1, false)
    expect(r).toEqual({ status: 200, body: `${digestOf(1)} ${MiB}` })
  })
})
