/**
 * Response side of the cache: the ResponseSink wrapper that tees the upstream body into a bounded
 * buffer while it streams to the client (past `max_object_size` the buffer is dropped and the
 * response streams on uncached), merges a revalidation's 304 into the stored response (§4.3.4), and
 * swaps a 5xx for the stale response when stale-if-error allows (RFC 5861 §4). Plus the writer
 * that answers from a stored response (hits, 304 replays, stale serves).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeader, ServerResponse } from "node:http"
import { parseCacheControl, type Directives } from "../../domain/cache/cacheControl.ts"
import { forwardStatus, type Forward } from "../../domain/cache/cacheStatus.ts"
import { ageSeconds, currentAge } from "../../domain/cache/freshness.ts"
import { heuristicLifetime, notStorable } from "../../domain/cache/storable.ts"
import { headerOf, makeStored, merge304, notModified, PER_USE, type StoredResponse, validatorMatches } from "../../domain/cache/StoredResponse.ts"
import { parseVary } from "../../domain/cache/vary.ts"
import { downstreamResponseHeaders, type HeaderList, type HeaderMap } from "../../domain/hopHeaders.ts"
import type { ResponseSink } from "../../services/Upstream.ts"

/** Answers from a stored response; a client's own matching conditional gets a 304 (RFC 9110 §13.2). */
export const writeStored = (
  res: ServerResponse,
  entry: StoredResponse,
  method: string,
  reqHeaders: IncomingHttpHeaders,
  ageMs: number,
  cacheStatus: string
): { readonly status: number; readonly bytes: number } => {
  const inm = reqHeaders["if-none-match"]
  const nm = (inm !== undefined || reqHeaders["if-modified-since"] !== undefined) && entry.status === 200 &&
    notModified(entry, inm, reqHeaders["if-modified-since"])
  const headers = entry.headers.slice()
  headers.push("age", String(ageSeconds(ageMs)), "cache-status", cacheStatus)
  const status = nm ? 304 : entry.status
  res.writeHead(status, headers as Array<OutgoingHttpHeader> as unknown as Array<string>)
  if (nm || method === "HEAD") {
    res.end()
    return { status, bytes: 0 }
  }
  res.end(entry.body)
  return { status, bytes: entry.body.length }
}

/** A response header list → flat string list without per-use fields (repeated values as separate lines). */
const flatten = (list: HeaderList): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string
    if (PER_USE.has(name)) continue
    const v = list[i + 1]!
    if (Array.isArray(v)) for (const x of v) out.push(name, x)
    else out.push(name, v)
  }
  return out
}

const one = (v: string | Array<string> | undefined): string | undefined => (Array.isArray(v) ? v.join(", ") : v)

export interface FillContext {
  readonly key: string
  readonly method: string
  readonly reqHeaders: IncomingHttpHeaders
  readonly request: Directives
  readonly maxObjectSize: number
  readonly defaultTtlMs: number
  readonly via: string
  readonly signature: (vary: ReadonlyArray<string>) => string
  /** The stored response being revalidated (conditional request sent), if any. */
  readonly stale: StoredResponse | undefined
  /**
   * The client's own If-None-Match / If-Modified-Since were replaced by the stored validators: a 200
   * that satisfies them is answered 304 by the cache (RFC 9111 §4.3.2), the body is still stored.
   */
  readonly clientConditional: boolean
  /** A 500/502/503/504 may be replaced by `stale` (RFC 5861 §4). */
  readonly staleIfError: boolean
  readonly fwd: Forward
  readonly collapsed: boolean | undefined
  /** The client was already answered (stale-while-revalidate): nothing is written to it. */
  readonly background: boolean
  readonly requestTime: number
  readonly now: () => number
}

/** What the sink saw, read by the phase once the exchange ends. */
export interface FillState {
  /** The client got a stored response instead of the upstream's (304 merge or stale-if-error). */
  replayed: { status: number; bytes: number } | undefined
  /** A 304 that updated `stale` (§4.3.4): store this. */
  merged: StoredResponse | undefined
  /** A 304 that matched no stored response: drop the stored one. */
  mismatch: boolean
  /** The client was answered 304 for its own conditional (clientConditional); the body only fills the cache. */
  notModified: boolean
  /** The response could be stored and all of it fit in max_object_size so far. */
  storing: boolean
  /** Why it is not stored (Cache-Status detail), once decided. */
  notStored: string | undefined
  complete: boolean
  status: number
  headers: Array<string>
  vary: ReadonlyArray<string>
  chunks: Array<Buffer>
  bytes: number
  /**
   * The client's end of a response being stored, held until the store has committed (run by the
   * cache plan's `complete`), so that `Cache-Status: stored` is true when the client reads it and
   * its next request finds the entry (Redis stores take a round trip).
   */
  deferredEnd: (() => void) | undefined
}

export const newFillState = (): FillState => ({
  replayed: undefined, merged: undefined, mismatch: false, notModified: false, storing: false, notStored: undefined, complete: false,
  status: 0, headers: [], vary: [], chunks: [], bytes: 0, deferredEnd: undefined
})

/** Passes on a held response end (once). */
export const releaseEnd = (st: FillState): void => {
  const end = st.deferredEnd
  st.deferredEnd = undefined
  end?.()
}

const ERROR_STATUSES = new Set([500, 502, 503, 504])

export const fillingSink = (inner: ResponseSink, res: ServerResponse, c: FillContext, st: FillState): ResponseSink => ({
  head: (status, statusText, headers) => {
    st.status = status
    const stale = c.stale
    if (stale !== undefined && status === 304) {
      const update = flatten(downstreamResponseHeaders(headers, c.via, status))
      const now = c.now()
      const entry = validatorMatches(stale, update) ? merge304(stale, update, c.requestTime, now) : stale
      if (entry === stale) st.mismatch = true
      else st.merged = entry
      if (!c.background) {
        const ageMs = currentAge(entry, now)
        st.replayed = writeStored(res, entry, c.method, c.reqHeaders, ageMs,
          forwardStatus({ fwd: c.fwd, fwdStatus: 304, stored: !st.mismatch, ttlMs: entry.lifetimeMs - ageMs, ...(c.collapsed === undefined ? {} : { collapsed: c.collapsed }) }))
      } else st.replayed = { status: 200, bytes: 0 }
      return
    }
    if (stale !== undefined && c.staleIfError && !c.background && ERROR_STATUSES.has(status)) {
      const now = c.now()
      st.replayed = writeStored(res, stale, c.method, c.reqHeaders, currentAge(stale, now),
        forwardStatus({ fwd: "stale", fwdStatus: status, detail: "stale-if-error" }))
      return
    }
    const response = parseCacheControl(one(headers["cache-control"]))
    const vary = parseVary(one(headers["vary"]))
    const expires = one(headers["expires"])
    let reason: string | undefined = c.method !== "GET" ? "head" : notStorable({
      status,
      request: c.request,
      response,
      authorization: c.reqHeaders.authorization !== undefined,
      setCookie: headers["set-cookie"] !== undefined,
      vary,
      expires,
      hasValidator: headers["etag"] !== undefined || headers["last-modified"] !== undefined,
      defaultTtlMs: c.defaultTtlMs
    })
    // a 204 has no body; otherwise only Content-Length says the size before the body has streamed
    const length = status === 204 ? 0 : headers["content-length"] === undefined ? undefined : Number(one(headers["content-length"]))
    if (reason === undefined && length !== undefined && length > c.maxObjectSize) reason = "too-large"
    st.notStored = reason
    if (reason === undefined && vary !== "*") {
      st.storing = true
      st.vary = vary
      st.headers = flatten(downstreamResponseHeaders(headers, c.via, status))
    }
    if (c.background) return
    const out: HeaderMap = { ...headers }
    // RFC 9211 §2.5 `stored` only when it will be true: the head goes out before the body, so a body
    // of unknown length (chunked, or compressed here) may still turn out over max_object_size. Such a
    // response is stored all the same when it ends within the limit; its Cache-Status just cannot say so.
    out["cache-status"] = forwardStatus({
      fwd: c.fwd,
      ...(c.stale === undefined ? {} : { fwdStatus: status }),
      stored: st.storing && length !== undefined,
      ...(c.collapsed === undefined ? {} : { collapsed: c.collapsed }),
      ...(reason === undefined ? {} : { detail: reason })
    })
    if (c.clientConditional && status === 200 &&
      notModified({ etag: one(headers["etag"]), lastModified: one(headers["last-modified"]) }, one(c.reqHeaders["if-none-match"]), one(c.reqHeaders["if-modified-since"]))) {
      // RFC 9111 §4.3.2: the client's condition (which the origin never saw) holds for the new response
      st.notModified = true
      delete out["content-length"]
      delete out["transfer-encoding"]
      inner.head(304, "Not Modified", out)
      inner.end({})
      return
    }
    inner.head(status, statusText, out)
  },
  data: (chunk) => {
    if (st.replayed !== undefined) return true
    if (st.storing) {
      if (st.bytes + chunk.length > c.maxObjectSize) {
        st.storing = false
        st.notStored = "too-large"
        st.chunks = []
      } else {
        st.chunks.push(chunk)
        st.bytes += chunk.length
      }
    }
    return c.background || st.notModified ? true : inner.data(chunk)
  },
  onDrain: (resume) => inner.onDrain(resume),
  end: (trailers) => {
    st.complete = true
    if (st.replayed !== undefined || c.background || st.notModified) return
    if (st.storing) st.deferredEnd = () => inner.end(trailers)
    else inner.end(trailers)
  },
  started: () => c.background || st.replayed !== undefined || st.notModified || inner.started()
})

/** The entry to store once the exchange ended normally, if the response was storable and fit. */
export const filledEntry = (c: FillContext, st: FillState, responseTime: number): StoredResponse | undefined => {
  if (!st.storing || !st.complete || st.replayed !== undefined) return undefined
  const body = st.chunks.length === 1 ? st.chunks[0]! : Buffer.concat(st.chunks, st.bytes)
  const entry = makeStored({
    key: c.key,
    status: st.status,
    headers: st.headers,
    body,
    requestTime: c.requestTime,
    responseTime,
    vary: st.vary,
    variant: c.signature(st.vary),
    heuristicMs: 0
  })
  const heuristicMs = heuristicLifetime(entry.status, entry.cc, headerOf(entry.headers, "expires"), c.defaultTtlMs)
  return heuristicMs > 0 ? makeStored({ ...entry, heuristicMs }) : entry
}
