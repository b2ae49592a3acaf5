/**
 * Phase: cacheLookup (RFC 9111 §4). A fresh stored response answers here (Age, Cache-Status) and the
 * request skips route and upstream. Otherwise the request continues with a plan: the sink wrapper
 * that stores the response while it streams (cacheStore.ts), the validators for a revalidation
 * (§4.3.1), and `complete`, run over the upstream exchange to store, release coalesced followers,
 * serve stale on error (RFC 5861) or invalidate after an unsafe method (§4.4).
 */
import * as Effect from "effect/Effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { primaryKey } from "../../domain/cache/cacheKey.ts"
import { type Directives, requestDirectives } from "../../domain/cache/cacheControl.ts"
import { type Forward, forwardStatus, hitStatus } from "../../domain/cache/cacheStatus.ts"
import { currentAge } from "../../domain/cache/freshness.ts"
import { reuse, staleOnErrorAllowed } from "../../domain/cache/reuse.ts"
import type { StoredResponse } from "../../domain/cache/StoredResponse.ts"
import { type FieldNormalisers, variantSignature } from "../../domain/cache/vary.ts"
import { NotInCache } from "../../domain/errors.ts"
import type { HeaderMap } from "../../domain/hopHeaders.ts"
import type { RequestContext } from "../../domain/RequestContext.ts"
import type { Cache, Flight } from "../../services/Cache.ts"
import { DelegatingSink, type ForwardResult, type ResponseSink } from "../../services/Upstream.ts"
import { filledEntry, fillingSink, type FillContext, newFillState, releaseEnd, writeStored } from "./cacheStore.ts"
import type { RequestHead } from "./validate.ts"

export interface CachePlan {
  /** A stored response was written: the request is done. */
  readonly answered: boolean
  /** Innermost response filter (next to the client), so the representation actually sent is stored. */
  readonly wrap: ((sink: ResponseSink) => ResponseSink) | undefined
  /** Request header list to send instead of the client's (a revalidation's validators). */
  readonly rawHeaders: ReadonlyArray<string> | undefined
  /** Wraps the upstream exchange: stores, releases followers, stale-if-error, invalidation. */
  readonly complete: <E>(self: Effect.Effect<ForwardResult, E>) => Effect.Effect<ForwardResult, E>
}

const identity = <A>(a: A) => a
export const PASS: CachePlan = { answered: false, wrap: undefined, rawHeaders: undefined, complete: identity }
/** The plan has after-steps (store, invalidate, release followers, stale-if-error) to run over the exchange. */
export const hasCompletion = (plan: CachePlan): boolean => plan.complete !== identity
const ANSWERED: CachePlan = { ...PASS, answered: true }

/** RFC 9110 §9.2.1 safe methods besides GET/HEAD: forwarded, never stored, never invalidating. */
const SAFE = new Set(["OPTIONS", "TRACE", "PROPFIND", "QUERY"])
/** The client's validators replaced by the stored ones on a revalidation (If-Match & co. are the origin's to judge). */
const CONDITIONAL = new Set(["if-none-match", "if-modified-since"])

const one = (v: string | Array<string> | undefined): string | undefined => (Array.isArray(v) ? v.join(", ") : v)

/** Adds a Cache-Status to whatever passes (methods and requests the cache does not handle). */
const statusOnly = (value: string): CachePlan => ({
  ...PASS,
  wrap: (inner) => new CacheStatusSink(inner, value)
})

class CacheStatusSink extends DelegatingSink {
  readonly value: string
  constructor(inner: ResponseSink, value: string) {
    super(inner)
    this.value = value
  }
  override head(status: number, statusText: string | undefined, headers: HeaderMap): void {
    this.inner.head(status, statusText, { ...headers, "cache-status": this.value })
  }
}

export interface CacheLookupDeps {
  readonly cache: Cache["Service"]
  readonly via: string
  readonly normalisers: FieldNormalisers
  /** Wall clock in ms (the Clock service's, read synchronously). */
  readonly now: () => number
}

export const makeCacheLookup = (deps: CacheLookupDeps) => {
  const { cache, via, normalisers, now } = deps
  const { settings } = cache
  if (!settings.enabled) return (_req: IncomingMessage, _res: ServerResponse, _head: RequestHead, _ctx: RequestContext) => Effect.succeed(PASS)
  const METHOD = forwardStatus({ fwd: "method" })

  /** §4.4: a non-error response to an unsafe method invalidates the target URI and same-origin Location/Content-Location. */
  const invalidating = (key: string): CachePlan => {
    const related: Array<string> = []
    // the client's end waits for the invalidation, so its next request cannot see the old entry
    let heldEnd: (() => void) | undefined
    return {
      ...PASS,
      wrap: (inner) => ({
        data: (chunk) => inner.data(chunk),
        onDrain: (resume) => inner.onDrain(resume),
        started: () => inner.started(),
        head: (status, text, headers: HeaderMap) => {
          for (const name of ["location", "content-location"]) {
            const v = one(headers[name])
            if (v === undefined) continue
            try {
              const u = new URL(v, key)
              const k = primaryKey(u.protocol === "https:" ? "https" : "http", u.host, u.pathname + u.search)
              if (new URL(k).host === new URL(key).host) related.push(k)
            } catch { /* not a URI: nothing to invalidate */ }
          }
          inner.head(status, text, { ...headers, "cache-status": METHOD })
        },
        end: (trailers) => { heldEnd = () => inner.end(trailers) }
      }),
      complete: (self) =>
        Effect.tap(self, (r) =>
          r.status >= 200 && r.status < 400
            ? Effect.forEach([key, ...related], (k) => cache.invalidate(k), { discard: true })
            : Effect.void).pipe(
            Effect.onExit(() => Effect.sync(() => {
              const end = heldEnd
              heldEnd = undefined
              end?.()
            }))
          )
    }
  }

  return Effect.fnUntraced(function*(req: IncomingMessage, res: ServerResponse, head: RequestHead, ctx: RequestContext) {
    const t = head.target
    if (t.form === "asterisk") return PASS
    const key = t.form === "absolute" ? primaryKey(t.scheme, t.authority, t.path) : primaryKey("http", req.headers.host ?? "", t.path)
    const method = ctx.method
    if (method !== "GET" && method !== "HEAD") return SAFE.has(method) ? statusOnly(METHOD) : invalidating(key)
    if (head.hasBody) return statusOnly(forwardStatus({ fwd: "bypass", detail: "request-body" }))
    if (req.headers.range !== undefined) return statusOnly(forwardStatus({ fwd: "bypass", detail: "range" }))
    const request = requestDirectives(one(req.headers["cache-control"]), one(req.headers.pragma))
    const signature = (names: ReadonlyArray<string>) => variantSignature(names, req.headers, normalisers)
    const kind = t.form === "absolute" ? "forward" as const : "reverse" as const

    const serve = (entry: StoredResponse, ageMs: number, status: string, outcome: string): CachePlan => {
      const r = writeStored(res, entry, method, req.headers, ageMs, status)
      ctx.kind = kind
      ctx.status = r.status
      ctx.bytesOut = r.bytes
      ctx.outcome = outcome
      return ANSWERED
    }

    /** Forward (miss or revalidation) with a storing sink; `flight` is released in `complete`. */
    const forward = (fwd: Forward, stale: StoredResponse | undefined, flight: Flight | undefined, collapsed: boolean | undefined, background?: { status: number; bytes: number }): CachePlan => {
      const requestTime = now()
      const revalidating = stale !== undefined && (stale.etag !== undefined || stale.lastModified !== undefined)
      const fill: FillContext = {
        key, method, reqHeaders: req.headers, request, maxObjectSize: settings.max_object_size, defaultTtlMs: settings.default_ttl,
        via, signature, stale, staleIfError: stale !== undefined && staleOnErrorAllowed(stale, request, requestTime), fwd, collapsed,
        background: background !== undefined, requestTime, now,
        clientConditional: revalidating && (req.headers["if-none-match"] !== undefined || req.headers["if-modified-since"] !== undefined)
      }
      const st = newFillState()
      const leader = flight?._tag === "Leader" ? flight : undefined
      if (leader !== undefined && background === undefined) {
        // A client that leaves before its response ended aborts the exchange, and nothing will be
        // stored: the followers are released at once (each then goes upstream itself). A failure
        // before the exchange (no route, refused) releases them soon after the answer.
        res.once("close", () => {
          if (!res.writableFinished) leader.done(false, false)
          else setTimeout(() => leader.done(false, false), 1000).unref()
        })
      }
      let rawHeaders: Array<string> | undefined
      if (revalidating) {
        rawHeaders = []
        const raw = req.rawHeaders
        for (let i = 0; i < raw.length; i += 2) if (!CONDITIONAL.has(raw[i]!.toLowerCase())) rawHeaders.push(raw[i]!, raw[i + 1]!)
        if (stale.etag !== undefined) rawHeaders.push("if-none-match", stale.etag)
        if (stale.lastModified !== undefined) rawHeaders.push("if-modified-since", stale.lastModified)
      }
      const commit = Effect.suspend(() => {
        const responseTime = now()
        if (st.mismatch && stale !== undefined) return Effect.as(cache.invalidate(key), false)
        if (st.merged !== undefined) return cache.store(st.merged, responseTime)
        const entry = filledEntry(fill, st, responseTime)
        return entry === undefined ? Effect.succeed(false) : cache.store(entry, responseTime)
      })
      return {
        answered: false,
        wrap: (inner) => fillingSink(inner, res, fill, st),
        rawHeaders,
        complete: <E>(self: Effect.Effect<ForwardResult, E>) => {
          const run = self.pipe(
            Effect.flatMap((result) =>
              Effect.map(commit, (stored): ForwardResult => {
                leader?.done(stored, !stored && st.notStored !== undefined)
                if (st.replayed !== undefined && st.merged === undefined && !st.mismatch) cache.count.stale()
                return background ?? (st.replayed ?? (st.notModified ? { status: 304, bytes: 0 } : result))
              })
            ),
            Effect.onExit(() => Effect.sync(() => {
              releaseEnd(st)
              leader?.done(false, false)
            }))
          )
          if (background !== undefined) return Effect.orElseSucceed(run, () => background)
          if (!fill.staleIfError || stale === undefined) return run
          // RFC 5861 §4: the upstream failed before answering → the stale response instead
          return Effect.catch(run, (e: E) => {
            const u = e as { readonly _tag?: string; readonly responseStarted?: boolean }
            if (u._tag !== "UpstreamError" || u.responseStarted === true || res.headersSent) return Effect.fail(e)
            cache.count.stale()
            const r = writeStored(res, stale, method, req.headers, currentAge(stale, now()), forwardStatus({ fwd: "stale", detail: "stale-if-error" }))
            ctx.outcome = "cache_stale_if_error"
            return Effect.succeed<ForwardResult>(r)
          })
        }
      }
    }

    /** Miss or must-validate: coalesce GETs on the key. */
    const goUpstream = Effect.fnUntraced(function*(fwd: Forward, stale: StoredResponse | undefined) {
      if (method !== "GET") {
        cache.count.miss()
        return forward(fwd, stale, undefined, undefined)
      }
      const flight = cache.join(key, now())
      if (flight._tag === "Follower") {
        const stored = yield* flight.wait
        if (stored) {
          const again = yield* cache.lookup(key, signature)
          if (again.entry !== undefined) {
            const r = reuse(again.entry, request, now())
            if (r.kind === "fresh") {
              cache.count.hit()
              cache.count.coalesced()
              return serve(again.entry, r.ageMs, forwardStatus({ fwd, stored: true, ttlMs: r.ttlMs, collapsed: true }), "cache_collapsed")
            }
          }
        }
        cache.count.miss()
        return forward(fwd, stale, undefined, false)
      }
      cache.count.miss()
      return forward(fwd, stale, flight, undefined)
    })

    const found = yield* cache.lookup(key, signature)
    const entry = found.entry
    if (entry !== undefined) {
      const r = reuse(entry, request, now())
      switch (r.kind) {
        case "fresh":
          cache.count.hit()
          return serve(entry, r.ageMs, hitStatus(r.ttlMs), "cache_hit")
        case "stale":
          cache.count.hit()
          cache.count.stale()
          return serve(entry, r.ageMs, hitStatus(r.ttlMs, "max-stale"), "cache_stale")
        case "swr": {
          cache.count.hit()
          cache.count.stale()
          const served = writeStored(res, entry, method, req.headers, r.ageMs, hitStatus(r.ttlMs, "stale-while-revalidate"))
          ctx.kind = kind
          ctx.status = served.status
          ctx.bytesOut = served.bytes
          ctx.outcome = "cache_stale_while_revalidate"
          // RFC 5861 §3: revalidate in the background, once per key at a time
          const flight = cache.join(key, now())
          return flight._tag === "Leader" ? forward("stale", entry, flight, undefined, served) : ANSWERED
        }
        case "validate":
          if (request.onlyIfCached) return yield* new NotInCache({ url: key })
          return yield* goUpstream(r.request ? "request" : "stale", entry)
      }
    }
    if (request.onlyIfCached) return yield* new NotInCache({ url: key })
    if (found.unavailable) {
      cache.count.miss()
      return statusOnly(forwardStatus({ fwd: "miss", detail: "backend-unavailable" }))
    }
    return yield* goUpstream(found.uriKnown ? "vary-miss" : "uri-miss", undefined)
  })
}

export type { Directives }
