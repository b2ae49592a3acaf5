/**
 * Phase: cacheLookup (RFC 9111 §4). A fresh stored response answers here (Age, Cache-Status) and the
 * request skips route and upstream. Otherwise the request continues with a plan: the sink wrapper
 * that stores the response while it streams (cacheStore.ts), the validators for a revalidation
 * (§4.3.1), and `complete`, run over the upstream exchange to store, release coalesced followers,
 * serve stale on error (RFC 5861) or invalidate after an unsafe method (§4.4).
 */
import * as Effect from "effect/Effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { keyOrigin, keyUrl, requestKey } from "../../domain/cache/cacheKey.ts"
import { type Directives, requestDirectives } from "../../domain/cache/cacheControl.ts"
import { type Forward, forwardStatus, hitStatus } from "../../domain/cache/cacheStatus.ts"
import { currentAge } from "../../domain/cache/freshness.ts"
import { reuse, staleOnErrorAllowed } from "../../domain/cache/reuse.ts"
import { headerOf, type StoredResponse } from "../../domain/cache/StoredResponse.ts"
import { type FieldNormalisers, variantSignature } from "../../domain/cache/vary.ts"
import { NotInCache } from "../../domain/errors.ts"
import { codingAcceptable } from "../../domain/contentEncoding.ts"
import type { HeaderMap } from "../../domain/hopHeaders.ts"
import type { RequestContext } from "../../domain/RequestContext.ts"
import type { Cache, Flight } from "../../services/Cache.ts"
import type { ResponseGuard } from "../../services/Filter.ts"
import { DelegatingSink, type ForwardResult, type ResponseSink } from "../../services/Upstream.ts"
import { filledEntry, fillingSink, type FillContext, newFillState, releaseEnd, writeStored } from "./cacheStore.ts"
import type { SelfCheck } from "./route.ts"
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

/**
 * The Cache-Status of a request the cache passed on, set before any response exists: a response the
 * proxy makes itself after that (502/504 for an origin that failed, 404 no route) carries it too
 * (RFC 9211: the cache forwarded the request, and no fwd-status since no response came back). The
 * response filters replace it with the full value once the upstream's head arrives.
 */
const presetStatus = (res: ServerResponse, value: string): void => {
  if (!res.headersSent) res.setHeader("cache-status", value)
}

/** Adds a Cache-Status to whatever passes (methods and requests the cache does not handle). */
const statusOnly = (res: ServerResponse, value: string): CachePlan => {
  presetStatus(res, value)
  return { ...PASS, wrap: (inner) => new CacheStatusSink(inner, value) }
}

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
  /**
   * Whether an absolute-form target names this listener (RequestPipeline's `isSelf`): such a request is
   * routed like origin-form, so it is keyed in the reverse namespace (cacheKey.ts). Without it every
   * absolute-form request is keyed as forward, which is safe (route maps one URL one way) but keeps
   * those requests apart from the origin-form ones for the same route.
   */
  readonly isSelf?: SelfCheck | undefined
}

export const makeCacheLookup = (deps: CacheLookupDeps) => {
  const { cache, via, normalisers, now, isSelf } = deps
  const { settings } = cache
  if (!settings.enabled) return (_req: IncomingMessage, _res: ServerResponse, _head: RequestHead, _ctx: RequestContext, _guard?: ResponseGuard) => Effect.succeed(PASS)
  const METHOD = forwardStatus({ fwd: "method" })

  /**
   * §4.4: a non-error response to an unsafe method invalidates the target URI and same-origin
   * Location/Content-Location (in the request's namespace: what the same client would reach with them).
   */
  const invalidating = (res: ServerResponse, key: string): CachePlan => {
    const related: Array<string> = []
    const url = keyUrl(key)
    presetStatus(res, METHOD)
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
              const base = new URL(url)
              const u = new URL(v, base)
              if (u.protocol === base.protocol && u.host === base.host) related.push(keyOrigin(key) + u.pathname + u.search)
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

  /** `guard`: the filter phase's response guard (undefined: no response filter is active). */
  return Effect.fnUntraced(function*(req: IncomingMessage, res: ServerResponse, head: RequestHead, ctx: RequestContext, guard?: ResponseGuard) {
    const t = head.target
    if (t.form === "asterisk") return PASS
    const self = t.form === "absolute" && isSelf !== undefined && isSelf(t.hostname, t.port)
    const key = requestKey(t, req.headers.host, (req.socket as { encrypted?: boolean }).encrypted === true, self)
    const method = ctx.method
    if (method !== "GET" && method !== "HEAD") {
      if (SAFE.has(method)) return statusOnly(res, METHOD)
      // an unusable Host keys nothing: there is nothing stored to invalidate either
      return key === undefined ? statusOnly(res, METHOD) : invalidating(res, key)
    }
    if (key === undefined) return statusOnly(res, forwardStatus({ fwd: "bypass", detail: "host" }))
    if (head.hasBody) return statusOnly(res, forwardStatus({ fwd: "bypass", detail: "request-body" }))
    if (req.headers.range !== undefined) return statusOnly(res, forwardStatus({ fwd: "bypass", detail: "range" }))
    const request = requestDirectives(one(req.headers["cache-control"]), one(req.headers.pragma))
    const signature = (names: ReadonlyArray<string>) => variantSignature(names, req.headers, normalisers)
    const kind = t.form === "absolute" && !self ? "forward" as const : "reverse" as const
    /**
     * A stored response this request may get: one in a coding the client does not accept (an
     * upstream-encoded variant under a shared Accept-Encoding key, vary.ts) counts as a vary-miss
     * and is replaced by what the upstream sends this client (RFC 9110 §12.5.3). So does one the
     * response filters in force refuse (stored before a rule existed): the request goes upstream,
     * where that response is inspected as any other (hits, stale and revalidated ones alike).
     */
    let refusedByRules = false
    const usable = (entry: StoredResponse | undefined): StoredResponse | undefined => {
      if (entry === undefined || !codingAcceptable(req.headers["accept-encoding"], headerOf(entry.headers, "content-encoding"))) return undefined
      if (guard !== undefined && guard.stored(entry) !== undefined) {
        refusedByRules = true
        return undefined
      }
      return entry
    }

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
      if (background === undefined) presetStatus(res, forwardStatus({ fwd, ...(collapsed === undefined ? {} : { collapsed }) }))
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
          const again = usable((yield* cache.lookup(key, signature)).entry)
          if (again !== undefined) {
            const r = reuse(again, request, now())
            if (r.kind === "fresh") {
              cache.count.hit()
              cache.count.coalesced()
              return serve(again, r.ageMs, forwardStatus({ fwd, stored: true, ttlMs: r.ttlMs, collapsed: true }), "cache_collapsed")
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
    const entry = usable(found.entry)
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
          if (request.onlyIfCached) return yield* new NotInCache({ url: keyUrl(key) })
          return yield* goUpstream(r.request ? "request" : "stale", entry)
      }
    }
    if (request.onlyIfCached) return yield* new NotInCache({ url: keyUrl(key) })
    if (found.unavailable) {
      cache.count.miss()
      return statusOnly(res, forwardStatus({ fwd: "miss", detail: "backend-unavailable" }))
    }
    // (a stored response the rules refuse is no Vary mismatch, RFC 9211 §2.2: a plain miss)
    return yield* goUpstream(refusedByRules ? "miss" : found.uriKnown ? "vary-miss" : "uri-miss", undefined)
  })
}

export type { Directives }
