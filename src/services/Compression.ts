/**
 * Response compression as a ResponseSink wrapper (gzip, brotli, zstd via node:zlib streams).
 * Negotiated per request from Accept-Encoding; decided per response at the head (type, size,
 * status, upstream encoding, no-transform). Bytes stream through: the zlib stream's `write`
 * result is the sink's `data` result (false pauses the upstream socket until zlib drains), and
 * zlib's output is paused while the client's socket is full. Nothing buffers a whole body.
 *
 * A HEAD response gets the header fields its GET would have (Vary, Content-Encoding, weak ETag, no
 * Content-Length; RFC 9110 §9.3.2), and no encoder: it has no body.
 *
 * Cache interplay: in `wrapSink` the cache store sits between compression and the client, so the
 * cache stores the representation actually sent (Content-Encoding + Vary: Accept-Encoding) and a
 * hit replays those bytes without recompressing. The cache keys the Accept-Encoding variant with
 * `normalizedAcceptEncoding` (the coding this service would pick), so there is at most one stored
 * representation per coding, whatever Accept-Encoding lists clients send.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Transform } from "node:stream"
import * as zlib from "node:zlib"
import type { CompressionSection } from "../domain/config/compression.ts"
import {
  type Coding,
  compileTypes,
  isCompressible,
  negotiateEncoding,
  varyWithAcceptEncoding,
  weakenEtag
} from "../domain/contentEncoding.ts"
import type { HeaderMap } from "../domain/hopHeaders.ts"
import { Config } from "./Config.ts"
import { Metrics } from "./Metrics.ts"
import type { StreamSpan } from "./Tracing.ts"
import type { ResponseSink } from "./Upstream.ts"

/** zlib's input buffer before `write` says "wait": 64 KiB, the size of a typical upstream chunk. */
const WRITABLE_HWM = 64 * 1024

/** Whether this Node offers zstd (Node ≥ 23.8 / 22.15). */
export const zstdAvailable = typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === "function"

export const makeEncoder = (cfg: CompressionSection) => (coding: Coding, sizeHint: number | undefined): Transform => {
  const stream = { writableHighWaterMark: WRITABLE_HWM } as object
  switch (coding) {
    case "gzip":
      return zlib.createGzip({ ...stream, level: cfg.gzip_level })
    case "br":
      return zlib.createBrotliCompress({
        ...stream,
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: cfg.brotli_quality,
          [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
          ...(sizeHint === undefined ? {} : { [zlib.constants.BROTLI_PARAM_SIZE_HINT]: sizeHint })
        }
      })
    case "zstd":
      return zlib.createZstdCompress({
        ...stream,
        params: { [zlib.constants.ZSTD_c_compressionLevel]: cfg.zstd_level }
      })
  }
}

const contentLengthOf = (headers: HeaderMap): number | undefined => {
  const v = headers["content-length"]
  const n = typeof v === "string" ? Number(v) : NaN
  return Number.isFinite(n) ? n : undefined
}

/** Compression of one response: the sink wrapper, and when its last byte has been handed on. */
export interface CompressedResponse {
  readonly wrap: (sink: ResponseSink) => ResponseSink
  /**
   * Succeeds once the wrapped sink's `end` has really been passed on (zlib finishes after the
   * upstream's last chunk), or at once when the response was not compressed. The upstream phase
   * waits for it, so later steps (cache store commit, access log, shutdown) see a finished body.
   */
  readonly finished: Effect.Effect<void>
  /** The same moment for native callers (the request path's relay): `cb` runs once, then. */
  readonly whenFinished: (cb: () => void) => void
  /** Encoded body bytes sent so far, or undefined when this response is not being encoded (the access log's bytes_out). */
  readonly bytesOut: () => number | undefined
}

export interface CompressionService {
  readonly enabled: boolean
  /** Codings offered, in server preference order (zstd dropped when this Node lacks it). */
  readonly offered: ReadonlyArray<Coding>
  /**
   * Compression for one response. `span` (tracing on) starts a child span when compression
   * starts; it ends when the compressed body is finished.
   */
  begin(req: IncomingMessage, res: ServerResponse, span?: (name: string) => StreamSpan): CompressedResponse
}

const PASS_THROUGH: CompressedResponse = { wrap: (sink) => sink, finished: Effect.void, whenFinished: (cb) => cb(), bytesOut: () => undefined }

export class Compression extends Context.Service<Compression, CompressionService>()("gatehouse/Compression") {
  static readonly layer = Layer.effect(
    Compression,
    Effect.gen(function*() {
      const { compression: cfg } = yield* Config
      const metrics = yield* Metrics
      const offered = cfg.algorithms.filter((a) => a !== "zstd" || zstdAvailable)
      if (!cfg.enabled || offered.length === 0) {
        return Compression.of({ enabled: false, offered, begin: () => PASS_THROUGH })
      }
      const types = compileTypes(cfg.types)
      const encoder = makeEncoder(cfg)
      const minSize = cfg.min_size

      const begin = (req: IncomingMessage, res: ServerResponse, span?: (name: string) => StreamSpan): CompressedResponse => {
        const head = req.method === "HEAD"
        let z: Transform | undefined
        let bytesIn = 0
        let bytesOut = 0
        let done = false
        let onDone: (() => void) | undefined
        const settle = () => {
          if (done) return
          done = true
          onDone?.()
        }
        const whenFinished = (cb: () => void) => {
          if (z === undefined || done) cb()
          else onDone = cb
        }
        const finished = Effect.callback<void>((resume) => whenFinished(() => resume(Effect.void)))
        const wrap = (inner: ResponseSink): ResponseSink => ({
          head: (status, statusText, headers) => {
            if (!isCompressible(status, headers, types, minSize)) return inner.head(status, statusText, headers)
            const out: HeaderMap = { ...headers, vary: varyWithAcceptEncoding(headers["vary"]) }
            const coding = negotiateEncoding(req.headers["accept-encoding"], offered)
            if (coding === undefined) return inner.head(status, statusText, out)
            const sizeHint = contentLengthOf(headers)
            delete out["content-length"]
            out["content-encoding"] = coding
            const etag = weakenEtag(headers["etag"])
            if (etag !== undefined) out["etag"] = etag
            // HEAD (RFC 9110 §9.3.2): the GET's header fields, the same coding decision; no body to encode
            if (head) return inner.head(status, statusText, out)
            const enc = encoder(coding, sizeHint)
            const phase = span?.("compress")
            enc.on("data", (buf: Buffer) => {
              bytesOut += buf.length
              if (!inner.data(buf)) {
                enc.pause()
                inner.onDrain(() => enc.resume())
              }
            })
            enc.once("end", () => {
              metrics.compressed(coding, bytesIn, bytesOut)
              phase?.end({ "gatehouse.compression.algorithm": coding, "gatehouse.compression.bytes_in": bytesIn, "gatehouse.compression.bytes_out": bytesOut })
              // Upstream trailers (digests, checksums) describe the identity bytes: not forwarded.
              inner.end({})
              settle()
            })
            enc.once("error", (e) => {
              res.destroy(e)
              settle()
            })
            enc.once("close", settle)
            res.once("close", () => enc.destroy())
            z = enc
            inner.head(status, statusText, out)
          },
          data: (chunk) => {
            if (z === undefined) return inner.data(chunk)
            bytesIn += chunk.length
            return z.write(chunk)
          },
          onDrain: (resume) => {
            if (z === undefined) inner.onDrain(resume)
            else z.once("drain", resume)
          },
          end: (trailers) => {
            if (z === undefined) inner.end(trailers)
            else z.end()
          },
          started: () => inner.started()
        })
        return { wrap, finished, whenFinished, bytesOut: () => z === undefined ? undefined : bytesOut }
      }
      return Compression.of({ enabled: true, offered, begin })
    })
  )
}
