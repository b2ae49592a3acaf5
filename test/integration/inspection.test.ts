/**
 * Content inspection against the real proxy (threat: malware delivered through the proxy): the EICAR
 * test signature in streamed bodies (split across chunk boundaries), SHA-256 digests of whole
 * bodies, blocked content types. A detected body is never delivered: 403 while the head is held,
 * else the connection is cut.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { request } from "node:http"
import type { ServerResponse } from "node:http"
import { EICAR } from "../../src/domain/signatureScanner.ts"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

const SIG = Buffer.from(EICAR, "latin1")
const HALF = 30
const FORBIDDEN_BODY = Buffer.from("a known bad payload\n")

interface Got {
  readonly status: number
  readonly body: Buffer
  /** The response ended cleanly (false: the connection was cut mid-body). */
  readonly complete: boolean
}

const get = (port: number, path: string) =>
  new Promise<Got>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: true }))
      res.on("error", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: false }))
    })
    req.on("error", reject)
    req.end()
  })

/** Write the parts as separate chunks, each after the previous was flushed and a tick passed. */
const writeApart = (res: ServerResponse, parts: ReadonlyArray<Buffer>) => {
  const next = (i: number) => {
    if (i === parts.length) return void res.end()
    res.write(parts[i], () => setTimeout(() => next(i + 1), 20))
  }
  next(0)
}

describe("content inspection", () => {
  let origin: Origin
  let proxy: RunningProxy
  /** Defaults only (EICAR on, no digests): streamed bodies are held only until their first chunk. */
  let streaming: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      switch (req.url) {
        case "/eicar-small-split": // Content-Length known and small: held whole, so a clean 403
          res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 100 + SIG.length })
          return writeApart(res, [Buffer.concat([Buffer.alloc(100, "x"), SIG.subarray(0, HALF)]), SIG.subarray(HALF)])
        case "/eicar-first-chunk": // chunked, signature in the first chunk: the head is still held → 403
          res.writeHead(200, { "content-type": "text/plain" })
          return writeApart(res, [SIG, Buffer.alloc(1000, "y")])
        case "/eicar-late-split": // chunked, clean first chunk, signature split over the next two
          res.writeHead(200, { "content-type": "text/plain" })
          return writeApart(res, [Buffer.alloc(5000, "z"), SIG.subarray(0, HALF), SIG.subarray(HALF), Buffer.alloc(10, "w")])
        case "/clean-chunked":
          res.writeHead(200, { "content-type": "text/plain" })
          return writeApart(res, [Buffer.alloc(5000, "a"), SIG.subarray(0, HALF), Buffer.alloc(10, "b")])
        case "/digest":
          res.writeHead(200, { "content-type": "text/plain" })
          return writeApart(res, [FORBIDDEN_BODY.subarray(0, 5), FORBIDDEN_BODY.subarray(5)])
        case "/digest-other":
          return res.end(Buffer.concat([FORBIDDEN_BODY, Buffer.from("!")]))
        case "/exe":
          res.writeHead(200, { "content-type": "application/x-msdownload; name=setup.exe" })
          return res.end("MZ")
        case "/video":
          res.writeHead(200, { "content-type": "Video/MP4" })
          return res.end("....")
        case "/two-content-types": // two fields: browsers use the last one
          res.setHeader("content-type", ["text/plain", "video/mp4"])
          return res.end("....")
        case "/content-type-list": // one field, two elements
          res.writeHead(200, { "content-type": "text/html, video/mp4; codecs=avc1" })
          return res.end("....")
        default:
          return res.end("plain")
      }
    })
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      security: {
        filters_file: "",
        inspection: {
          sha256: [createHash("sha256").update(FORBIDDEN_BODY).digest("hex").toUpperCase()],
          blocked_content_types: ["application/x-msdownload", "video/*"]
        }
      }
    })
    streaming = await startProxy({ routing: { default_backend: origin.url }, security: { filters_file: "" } })
  })
  afterAll(async () => {
    await streaming.stop()
    await proxy.stop()
    await origin.close()
  })

  it("EICAR split across chunk boundaries in a small body → 403 naming the rule, nothing of it delivered", async () => {
    const r = await get(proxy.port, "/eicar-small-split")
    expect(r.status).toBe(403)
    expect(JSON.parse(r.body.toString())).toMatchObject({ error: "blocked", rule: "security.inspection.eicar: EICAR-Test-File" })
    expect(r.body.includes(SIG.subarray(0, HALF))).toBe(false)
    expect(proxy.entries().at(-1)).toMatchObject({ status: 403, outcome: "Blocked" })
  })

  it("EICAR in the first chunk of a streamed body → 403 (the head waits for the first chunk)", async () => {
    const r = await get(proxy.port, "/eicar-first-chunk")
    expect(r.status).toBe(403)
    expect(r.body.includes(SIG)).toBe(false)
  })

  it("EICAR split across later chunks after the head went out → connection cut, signature never delivered whole", async () => {
    const r = await get(streaming.port, "/eicar-late-split")
    expect(r.status).toBe(200)
    expect(r.complete).toBe(false)
    expect(r.body.includes(SIG)).toBe(false)
    expect(r.body.length).toBeLessThan(5000 + SIG.length)
    expect(streaming.entries().at(-1)).toMatchObject({ outcome: "Blocked" })
  })

  it("with digests configured, unknown-length bodies up to max_digest_bytes are held: the same body → clean 403", async () => {
    const r = await get(proxy.port, "/eicar-late-split")
    expect(r.status).toBe(403)
    expect(r.body.includes(SIG.subarray(0, HALF))).toBe(false)
  })

  it("a clean streamed body (even with half a signature) is delivered whole", async () => {
    const r = await get(streaming.port, "/clean-chunked")
    expect(r.status).toBe(200)
    expect(r.complete).toBe(true)
    expect(r.body.length).toBe(5000 + HALF + 10)
  })

  it("a body whose SHA-256 is listed → 403; a different body passes", async () => {
    const r = await get(proxy.port, "/digest")
    expect(r.status).toBe(403)
    expect(JSON.parse(r.body.toString()).rule).toMatch(/^security\.inspection\.sha256: [0-9a-f]{64}$/)
    const other = await get(proxy.port, "/digest-other")
    expect(other.status).toBe(200)
    expect(other.body.toString()).toBe(`${FORBIDDEN_BODY.toString()}!`)
  })

  it("blocked content types (exact, with parameters; type/* case-insensitive) → 403", async () => {
    const exe = await get(proxy.port, "/exe")
    expect(exe.status).toBe(403)
    expect(JSON.parse(exe.body.toString()).rule).toBe("security.inspection.blocked_content_types: application/x-msdownload")
    expect((await get(proxy.port, "/video")).status).toBe(403)
    expect((await get(proxy.port, "/plain")).body.toString()).toBe("plain")
  })

  it("threat: a blocked type behind an innocent one — every Content-Type field and list element is judged (RFC 9110 §8.3)", async () => {
    for (const path of ["/two-content-types", "/content-type-list"]) {
      const r = await get(proxy.port, path)
      expect(r.status, path).toBe(403)
      expect(JSON.parse(r.body.toString()).rule, path).toBe("security.inspection.blocked_content_types: video/*")
    }
  })
})
