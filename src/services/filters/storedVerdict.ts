/**
 * The response filters' verdict on a stored response (a cache hit), as if it came from the upstream
 * now: the head checks, then each body inspector fed the whole stored body (it is in memory already,
 * at most `cache.max_object_size`). A response stored before a rule existed — a reload turned
 * inspection on, or an instance with other rules filled a shared Redis cache — is judged by the
 * rules in force, as Squid's http_reply_access judges hits too. A compressed body is inspected decoded.
 */
import * as zlib from "node:zlib"
import { Blocked } from "../../domain/errors.ts"
import type { HeaderMap } from "../../domain/hopHeaders.ts"
import type { ActiveFilter, FilterRequest } from "./FilterPlugin.ts"

/** What the verdict needs of a stored response (domain/cache/StoredResponse.ts). */
export interface StoredLike {
  readonly status: number
  /** Flat [name, value, ...], lowercase names. */
  readonly headers: ReadonlyArray<string>
  readonly body: Buffer
}

/** A flat header list as the upstream's header map (a repeated field → its values in order). */
const headerMapOf = (flat: ReadonlyArray<string>): HeaderMap => {
  const map: HeaderMap = {}
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!
    const value = flat[i + 1]!
    const had = map[name]
    map[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value]
  }
  return map
}

/** Decoded bodies larger than this are not inspected from the cache (the hit is refused: the origin's is streamed). */
const DECODED_MAX = 64 * 1024 * 1024

/**
 * The body as the inspectors meet it on the way from the origin: Gatehouse compresses after the
 * guard, so a variant it compressed was scanned as identity bytes and must be decoded for the scan
 * (a coding the origin applied is decoded too: the stricter reading). `null`: it cannot be (a
 * corrupt body, or one that would decode past DECODED_MAX).
 */
const inspectable = (body: Buffer, coding: string | Array<string> | undefined): Buffer | null => {
  const c = typeof coding === "string" ? coding.trim().toLowerCase() : coding === undefined ? "" : "?"
  if (c === "" || c === "identity" || body.length === 0) return body
  const options = { maxOutputLength: DECODED_MAX }
  try {
    if (c === "gzip" || c === "x-gzip") return zlib.gunzipSync(body, options)
    if (c === "br") return zlib.brotliDecompressSync(body, options)
    if (c === "deflate") return zlib.inflateSync(body, options)
    const zstd = (zlib as { zstdDecompressSync?: (b: Buffer, o: object) => Buffer }).zstdDecompressSync
    if (c === "zstd" && zstd !== undefined) return zstd(body, options)
  } catch {
    return null
  }
  return null
}

/** A stored body that cannot be decoded for the scan is not served from the cache (the origin's is inspected as it streams). */
const UNINSPECTABLE = new Blocked({
  filter: "inspection",
  subject: "cached response",
  rule: "security.inspection",
  reason: "the stored body cannot be decoded for inspection"
})

export const storedVerdict = (
  req: FilterRequest,
  heads: ReadonlyArray<NonNullable<ActiveFilter["responseHead"]>>,
  bodies: ReadonlyArray<NonNullable<ActiveFilter["responseBody"]>>,
  stored: StoredLike
): Blocked | undefined => {
  const headers = headerMapOf(stored.headers)
  for (const check of heads) {
    const b = check(req, stored.status, headers)
    if (b !== undefined) return b
  }
  let body: Buffer | null | undefined
  for (const make of bodies) {
    const ins = make(req, stored.status, headers)
    if (ins === undefined) continue
    body ??= inspectable(stored.body, headers["content-encoding"])
    if (body === null) return UNINSPECTABLE
    const b = (body.length > 0 ? ins.data(body) : undefined) ?? ins.end()
    if (b !== undefined) return b
  }
  return undefined
}
