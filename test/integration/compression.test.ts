/**
 * Compression through the real proxy: negotiation matrix from Accept-Encoding, the cases where the
 * proxy must not transform (already encoded, no-transform, 206, small, not compressible, HEAD),
 * header edits (Vary, Content-Length, ETag) and a large streamed body.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { request } from "node:http"
import * as zlib from "node:zlib"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { scrape } from "../fixtures/metrics.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

const TEXT = JSON.stringify({ items: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ["a", "b", "c"] })) })
const BIG_CHUNK = Buffer.from("gatehouse streams compressed bodies without buffering them. ".repeat(1000))
const BIG_CHUNKS = 200 // ~12 MB, chunked

interface Raw {
  status: number
  headers: Record<string, string | Array<string> | undefined>
  body: Buffer
}

const get = (port: number, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Raw> =>
  new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end()
  })

const decode = (encoding: string | undefined, body: Buffer): Buffer => {
  switch (encoding) {
    case "gzip":
      return zlib.gunzipSync(body)
    case "br":
      return zlib.brotliDecompressSync(body)
    case "zstd":
      return zlib.zstdDecompressSync(body)
    default:
      return body
  }
}

describe("compression (gzip / br / zstd)", () => {
  let origin: Origin
  let proxy: RunningProxy
  let plain: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      const path = req.url ?? "/"
      const json = { "content-type": "application/json", "content-length": String(Buffer.byteLength(TEXT)) }
      if (path === "/json") return res.writeHead(200, { ...json, etag: '"v1"', vary: "Origin" }).end(TEXT)
      if (path === "/small") return res.writeHead(200, { "content-type": "application/json", "content-length": "2" }).end("{}")
      if (path === "/png") return res.writeHead(200, { "content-type": "image/png", "content-length": String(Buffer.byteLength(TEXT)) }).end(TEXT)
      if (path === "/encoded") {
        const gz = zlib.gzipSync(TEXT)
        return res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": String(gz.length) }).end(gz)
      }
      if (path === "/no-transform") return res.writeHead(200, { ...json, "cache-control": "no-transform" }).end(TEXT)
      if (path === "/partial") {
        const part = TEXT.slice(0, 2000)
        return res.writeHead(206, { "content-type": "application/json", "content-range": `bytes 0-1999/${TEXT.length}`, "content-length": "2000" }).end(part)
      }
      if (path === "/stream") {
        res.writeHead(200, { "content-type": "text/plain" })
        let i = 0
        const pump = () => {
          while (i < BIG_CHUNKS) {
            i++
            if (!res.write(BIG_CHUNK)) return void res.once("drain", pump)
          }
          res.end()
        }
        return pump()
      }
      res.writeHead(404).end()
    })
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      compression: { enabled: true, min_size: "1KB", gzip_level: 6, brotli_quality: 4, zstd_level: 3 }
    })
    plain = await startProxy({ routing: { default_backend: origin.url } })
  })
  afterAll(async () => {
    await proxy.stop()
    await plain.stop()
    await origin.close()
  })

  const matrix: ReadonlyArray<readonly [string | undefined, string | undefined]> = [
    [undefined, undefined],
    ["gzip", "gzip"],
    ["br", "br"],
    ["zstd", "zstd"],
    ["gzip, deflate, br, zstd", "zstd"],
    ["gzip;q=1, br;q=0.5", "gzip"],
    ["br;q=0.9, gzip;q=0.2, zstd;q=0", "br"],
    ["*", "zstd"],
    ["*;q=0.1, gzip;q=0.9", "gzip"],
    ["identity;q=0", undefined],
    ["deflate", undefined]
  ]
  for (const [accept, expected] of matrix) {
    it(`Accept-Encoding ${JSON.stringify(accept)} → ${expected ?? "identity"}`, async () => {
      const res = await get(proxy.port, "/json", accept === undefined ? {} : { "accept-encoding": accept })
      expect(res.status).toBe(200)
      expect(res.headers["content-encoding"]).toBe(expected)
      expect(String(res.headers.vary)).toBe("Origin, Accept-Encoding")
      expect(decode(expected, res.body).toString()).toBe(TEXT)
      if (expected !== undefined) {
        expect(res.headers["content-length"]).toBeUndefined()
        expect(res.headers.etag).toBe('W/"v1"')
        expect(res.body.length).toBeLessThan(TEXT.length / 3)
      } else {
        expect(res.headers["content-length"]).toBe(String(TEXT.length))
        expect(res.headers.etag).toBe('"v1"')
      }
    })
  }

  const untouched: ReadonlyArray<readonly [string, string, number]> = [
    ["/small", "below min_size", 200],
    ["/png", "a type not listed", 200],
    ["/encoded", "already encoded by the upstream (never double-encoded)", 200],
    ["/no-transform", "RFC 9111 §5.2.2.6 Cache-Control: no-transform", 200],
    ["/partial", "RFC 9110 §15.3.7 206 Partial Content", 206]
  ]
  for (const [path, why, status] of untouched) {
    it(`leaves the body as sent when ${why}`, async () => {
      const direct = await get(origin.port, path, { "accept-encoding": "gzip" })
      const res = await get(proxy.port, path, { "accept-encoding": "gzip, br, zstd" })
      expect(res.status).toBe(status)
      expect(res.headers["content-encoding"]).toBe(direct.headers["content-encoding"])
      expect(res.headers["content-length"]).toBe(direct.headers["content-length"])
      expect(res.body.equals(direct.body)).toBe(true)
    })
  }

  it("the access log's bytes_out is the encoded body the client got, not the identity bytes from upstream", async () => {
    const r = await get(proxy.port, "/json", { "accept-encoding": "gzip" })
    expect(r.headers["content-encoding"]).toBe("gzip")
    await new Promise((resolve) => setTimeout(resolve, 20))
    const entry = proxy.entries().filter((e) => e["url"] === "/json").at(-1)
    expect(entry?.["bytes_out"]).toBe(r.body.length)
    expect(r.body.length).toBeLessThan(Buffer.byteLength(TEXT))
  })

  it("RFC 9110 §9.3.2 HEAD gets the header fields the GET would have (Vary, Content-Encoding, weak ETag), no body", async () => {
    const head = await get(proxy.port, "/json", { "accept-encoding": "gzip" }, "HEAD")
    const full = await get(proxy.port, "/json", { "accept-encoding": "gzip" })
    expect(head.status).toBe(200)
    expect(head.body.length).toBe(0)
    for (const name of ["vary", "content-encoding", "etag", "content-type"]) expect(head.headers[name]).toEqual(full.headers[name])
    expect(head.headers.vary).toBe("Origin, Accept-Encoding")
    expect(head.headers["content-encoding"]).toBe("gzip")
    expect(head.headers.etag).toBe('W/"v1"')
    expect(head.headers["content-length"]).toBeUndefined()
    // a client that accepts no coding the proxy offers: identity, but still Vary
    const identity = await get(proxy.port, "/json", { "accept-encoding": "deflate" }, "HEAD")
    expect(identity.headers["content-encoding"]).toBeUndefined()
    expect(identity.headers.vary).toBe("Origin, Accept-Encoding")
    expect(identity.headers["content-length"]).toBe(String(TEXT.length))
  })

  it("streams a ~12 MB chunked body through gzip and brotli intact", async () => {
    for (const coding of ["gzip", "br"]) {
      const res = await get(proxy.port, "/stream", { "accept-encoding": coding })
      expect(res.headers["content-encoding"]).toBe(coding)
      expect(res.headers["transfer-encoding"]).toBe("chunked")
      const out = decode(coding, res.body)
      expect(out.length).toBe(BIG_CHUNK.length * BIG_CHUNKS)
      expect(out.subarray(0, BIG_CHUNK.length).equals(BIG_CHUNK)).toBe(true)
    }
  })

  it("is off by default: a transparent proxy keeps the origin's bytes", async () => {
    const res = await get(plain.port, "/json", { "accept-encoding": "gzip, br" })
    expect(res.headers["content-encoding"]).toBeUndefined()
    expect(res.headers.vary).toBe("Origin")
    expect(res.body.toString()).toBe(TEXT)
  })

  it("records the compression ratio in the metrics", async () => {
    await get(proxy.port, "/json", { "accept-encoding": "gzip" })
    const text = await scrape(proxy.metricsPort)
    expect(text).toMatch(/gatehouse_compressed_responses_total\{algorithm="gzip"\} [1-9]/)
    expect(text).toMatch(/gatehouse_compression_ratio_bucket\{algorithm="gzip",le="0.5"\} [1-9]/)
  })
})

describe("compression with the cache (one stored representation per coding, no recompression on hits)", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url === "/pre-encoded") {
        // an origin that gzips by itself for clients that accept it
        const gzipOk = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""))
        const body = gzipOk ? zlib.gzipSync(TEXT) : Buffer.from(TEXT)
        res.writeHead(200, {
          "content-type": "application/json", "cache-control": "public, max-age=60", vary: "Accept-Encoding",
          "content-length": String(body.length), ...(gzipOk ? { "content-encoding": "gzip" } : {})
        })
        return res.end(body)
      }
      res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=60", "content-length": String(Buffer.byteLength(TEXT)) })
      res.end(TEXT)
    })
    proxy = await startProxy({ routing: { default_backend: origin.url }, cache: { enabled: true }, compression: { enabled: true } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })
  const compressedCount = async () => {
    const text = await scrape(proxy.metricsPort)
    let n = 0
    for (const m of text.matchAll(/^gatehouse_compressed_responses_total\{[^}]*\} (\d+)$/gm)) n += Number(m[1])
    return n
  }

  it("a hit replays the stored encoded bytes; another coding is its own variant", async () => {
    const first = await get(proxy.port, "/c", { "accept-encoding": "gzip" })
    expect(first.headers["content-encoding"]).toBe("gzip")
    const again = await get(proxy.port, "/c", { "accept-encoding": "gzip" })
    expect(again.headers["content-encoding"]).toBe("gzip")
    expect(decode("gzip", again.body).toString()).toBe(TEXT)
    expect(origin.seen.length).toBe(1)
    expect(await compressedCount()).toBe(1) // served from the cache, not recompressed
    const br = await get(proxy.port, "/c", { "accept-encoding": "br" })
    expect(br.headers["content-encoding"]).toBe("br")
    expect(decode("br", br.body).toString()).toBe(TEXT)
    const identity = await get(proxy.port, "/c", {})
    expect(identity.headers["content-encoding"]).toBeUndefined()
    expect(identity.body.toString()).toBe(TEXT)
  })

  it("RFC 9110 §12.5.3 a variant the upstream encoded is never served to a client that does not accept its coding", async () => {
    // "zstd, gzip" and "zstd" share the variant key (Gatehouse would pick zstd for both)
    const a = await get(proxy.port, "/pre-encoded", { "accept-encoding": "zstd, gzip" })
    expect(a.headers["content-encoding"]).toBe("gzip") // the upstream's own gzip, passed through and stored
    const b = await get(proxy.port, "/pre-encoded", { "accept-encoding": "zstd" })
    expect(b.headers["content-encoding"]).toBe("zstd")
    expect(b.headers["cache-status"]).toContain("fwd=vary-miss")
    expect(decode("zstd", b.body).toString()).toBe(TEXT)
    const c = await get(proxy.port, "/pre-encoded", { "accept-encoding": "zstd" })
    expect(c.headers["cache-status"]).toMatch(/hit/)
    expect(c.headers["content-encoding"]).toBe("zstd")
  })
})
