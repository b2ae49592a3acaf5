/**
 * Bulk bodies through the reverse proxy: large uploads (Content-Length and chunked) and a large
 * download arrive intact, streamed, and every chunk is reported to the Reclaimer
 * (services/Reclaimer.ts: relayed buffers are freed young; its counting is unit-tested).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash, randomBytes } from "node:crypto"
import { request } from "node:http"
import type { Writable } from "node:stream"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
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
  let origin: Origin
  beforeAll(async () => {
    // POST → sha256 and length of the body as the origin received it; GET /download/N → N MiB, Content-Length
    origin = await startOrigin((req, res, body) => {
      const download = /^\/download\/(\d+)$/.exec(req.url ?? "")
      if (download !== null) {
        const blocks = Number(download[1])
        res.writeHead(200, { "content-length": blocks * MiB })
        return writeBlocks(res, blocks)
      }
      res.end(`${createHash("sha256").update(body).digest("hex")} ${body.length}`)
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
