/**
 * A stored response (RFC 9111 §3): the header list exactly as written to clients (hop-by-hop fields
 * removed, Via added; Age and Cache-Status are added per use), the body, the request/response times
 * of §4.2.3 and what is derived from the headers once (directives, lifetime, validators).
 */
import { type Directives, parseCacheControl } from "./cacheControl.ts"
import { freshnessLifetime, parseAge, parseHttpDate } from "./freshness.ts"

export interface StoredFields {
  /** Primary key (cacheKey.ts). */
  readonly key: string
  readonly status: number
  /** Flat [name, value, ...], lowercase names, without Age and Cache-Status. */
  readonly headers: ReadonlyArray<string>
  readonly body: Buffer
  readonly requestTime: number
  readonly responseTime: number
  /** Vary field names (sorted, lowercase) and this variant's signature (vary.ts). */
  readonly vary: ReadonlyArray<string>
  readonly variant: string
  /** Heuristic lifetime (ms) this response got when stored (default_ttl, 0 = none). */
  readonly heuristicMs: number
  /** Age received with the response (seconds); read from an `age` field in `headers` when absent. */
  readonly ageValue?: number | undefined
}

export interface StoredResponse extends Omit<StoredFields, "ageValue"> {
  readonly cc: Directives
  readonly dateMs: number | undefined
  /** Age header received with the response, seconds (§4.2.3 age_value). */
  readonly ageValue: number
  readonly lifetimeMs: number
  readonly etag: string | undefined
  readonly lastModified: string | undefined
  /** Bytes accounted against max_memory. */
  readonly size: number
}

/** First value of a field in a flat header list (names lowercase). */
export const headerOf = (flat: ReadonlyArray<string>, name: string): string | undefined => {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1]
  return undefined
}

/** All values of a field, joined as a list. */
const listOf = (flat: ReadonlyArray<string>, name: string): string | undefined => {
  let out: string | undefined
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) out = out === undefined ? flat[i + 1] : `${out}, ${flat[i + 1]}`
  return out
}

export const makeStored = (input: StoredFields): StoredResponse => {
  const ageHeader = headerOf(input.headers, "age")
  const f = ageHeader === undefined ? input : { ...input, headers: input.headers.filter((_, i, a) => a[i - (i % 2)] !== "age") }
  const cc = parseCacheControl(listOf(f.headers, "cache-control"))
  const dateMs = parseHttpDate(headerOf(f.headers, "date"))
  let headerBytes = 0
  for (const h of f.headers) headerBytes += h.length + 2
  return {
    ...f,
    cc,
    dateMs,
    ageValue: input.ageValue ?? parseAge(ageHeader),
    lifetimeMs: freshnessLifetime({ cc, dateMs, expires: headerOf(f.headers, "expires"), responseTimeMs: f.responseTime, heuristicMs: f.heuristicMs }),
    etag: headerOf(f.headers, "etag"),
    lastModified: headerOf(f.headers, "last-modified"),
    size: f.body.length + headerBytes + f.key.length + f.variant.length + 64
  }
}

/** Header fields never kept in a stored response: Cache-Status is ours (Age becomes `ageValue`). */
export const PER_USE = new Set(["cache-status"])

/**
 * §3.2 / §4.3.4: a 304 updates the stored response's header fields — each field in the 304 replaces the
 * stored one — except Content-Length and the fields describing the stored body's encoding and range,
 * and Vary, which the stored variant's secondary key was computed from (§3.2 lets a cache keep fields
 * its stored response depends on). The new age_value is the 304's Age; the times become those of the
 * validation exchange.
 */
const NOT_UPDATED = new Set(["content-length", "content-encoding", "content-range", "transfer-encoding", "vary"])

export const merge304 = (
  stored: StoredResponse,
  update: ReadonlyArray<string>,
  requestTime: number,
  responseTime: number
): StoredResponse => {
  const replaced = new Set<string>()
  for (let i = 0; i < update.length; i += 2) if (!NOT_UPDATED.has(update[i]!) && update[i] !== "cache-status") replaced.add(update[i]!)
  // A stored representation Gatehouse transformed (compressed) carries the weak form of the origin's
  // strong ETag (RFC 9110 §8.8.3); the 304 names the strong one: it still describes these bytes weakly.
  const etag = headerOf(update, "etag")
  if (etag !== undefined && stored.etag !== undefined && stored.etag.startsWith("W/") && !etag.startsWith("W/") && opaque(stored.etag) === etag) {
    replaced.delete("etag")
  }
  const headers: Array<string> = []
  for (let i = 0; i < stored.headers.length; i += 2) {
    const n = stored.headers[i]!
    if (!replaced.has(n) && n !== "age") headers.push(n, stored.headers[i + 1]!)
  }
  for (let i = 0; i < update.length; i += 2) if (replaced.has(update[i]!)) headers.push(update[i]!, update[i + 1]!)
  return makeStored({ ...stored, headers, requestTime, responseTime, ageValue: parseAge(headerOf(update, "age")) })
}

/**
 * §4.3.4: the 304 selects the stored response when its ETag matches the stored one, or, without an
 * ETag, when Last-Modified matches or the 304 carries no validator at all. The ETags are compared
 * weakly (opaque-tags equal): the one stored response revalidated here was chosen by its key and
 * variant, and its ETag may be the weak form Gatehouse gave the origin's strong one when it
 * compressed the body (RFC 9110 §8.8.3) — the origin's 304 then names the strong form, which
 * validates the identity bytes the stored encoding was made from. (A strict comparison would drop
 * every compressed entry with a strong ETag on its first revalidation.)
 */
export const validatorMatches = (stored: StoredResponse, update: ReadonlyArray<string>): boolean => {
  const etag = headerOf(update, "etag")
  if (etag !== undefined) return stored.etag !== undefined && opaque(stored.etag) === opaque(etag)
  const lm = headerOf(update, "last-modified")
  if (lm !== undefined) return stored.lastModified === undefined || stored.lastModified === lm
  return true
}

const opaque = (etag: string): string => (etag.startsWith("W/") ? etag.slice(2) : etag)

/**
 * RFC 9110 §13.1.2/§13.1.3 evaluated against a stored response for a client's own conditional GET/HEAD:
 * If-None-Match (weak comparison) takes precedence over If-Modified-Since. True → answer 304.
 */
export const notModified = (stored: Pick<StoredResponse, "etag" | "lastModified">, ifNoneMatch: string | undefined, ifModifiedSince: string | undefined): boolean => {
  if (ifNoneMatch !== undefined) {
    if (stored.etag === undefined) return false
    const mine = opaque(stored.etag)
    for (const t of ifNoneMatch.split(",")) {
      const tag = t.trim()
      if (tag === "*" || opaque(tag) === mine) return true
    }
    return false
  }
  if (ifModifiedSince === undefined || stored.lastModified === undefined) return false
  const since = parseHttpDate(ifModifiedSince)
  const lm = parseHttpDate(stored.lastModified)
  return since !== undefined && lm !== undefined && lm <= since
}

// ---- wire form (Redis): [u32 meta length][meta JSON][body] ----------------------------------------

export const encodeStored = (s: StoredResponse): Buffer => {
  const meta = Buffer.from(JSON.stringify({
    k: s.key, s: s.status, h: s.headers, rq: s.requestTime, rs: s.responseTime, v: s.vary, vs: s.variant, hm: s.heuristicMs, a: s.ageValue
  }))
  const out = Buffer.allocUnsafe(4 + meta.length + s.body.length)
  out.writeUInt32BE(meta.length, 0)
  meta.copy(out, 4)
  s.body.copy(out, 4 + meta.length)
  return out
}

export const decodeStored = (buf: Buffer): StoredResponse | undefined => {
  if (buf.length < 4) return undefined
  const len = buf.readUInt32BE(0)
  if (4 + len > buf.length) return undefined
  try {
    const m = JSON.parse(buf.subarray(4, 4 + len).toString("utf8")) as {
      k: string; s: number; h: Array<string>; rq: number; rs: number; v: Array<string>; vs: string; hm: number; a: number
    }
    return makeStored({
      key: m.k, status: m.s, headers: m.h, body: buf.subarray(4 + len), requestTime: m.rq, responseTime: m.rs,
      vary: m.v, variant: m.vs, heuristicMs: m.hm, ageValue: m.a
    })
  } catch {
    return undefined
  }
}
