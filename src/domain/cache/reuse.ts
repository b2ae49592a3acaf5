/**
 * RFC 9111 §4 / §5.2.1 / RFC 5861: may this stored response answer this request now, and how?
 * (pure; times in ms)
 */
import type { Directives } from "./cacheControl.ts"
import { currentAge } from "./freshness.ts"
import type { StoredResponse } from "./StoredResponse.ts"

export type Reuse =
  /** Fresh (and acceptable to the request's directives): serve. */
  | { readonly kind: "fresh"; readonly ageMs: number; readonly ttlMs: number }
  /** Stale, but the request accepts it (max-stale): serve. */
  | { readonly kind: "stale"; readonly ageMs: number; readonly ttlMs: number }
  /** Stale within stale-while-revalidate: serve and revalidate in the background. */
  | { readonly kind: "swr"; readonly ageMs: number; readonly ttlMs: number }
  /** Must be validated with the origin first; `request` when the request's directives demanded it. */
  | { readonly kind: "validate"; readonly ageMs: number; readonly ttlMs: number; readonly request: boolean }

/** §4.2.4: must-revalidate, proxy-revalidate and s-maxage forbid serving stale at all. */
export const staleForbidden = (s: StoredResponse): boolean =>
  s.cc.mustRevalidate || s.cc.proxyRevalidate || s.cc.sMaxAge !== undefined

export const reuse = (s: StoredResponse, req: Directives, nowMs: number): Reuse => {
  const ageMs = currentAge(s, nowMs)
  const ttlMs = s.lifetimeMs - ageMs
  // §5.2.1.4 request no-cache, §5.2.2.4 response no-cache: validate first
  if (req.noCache) return { kind: "validate", ageMs, ttlMs, request: true }
  if (s.cc.noCache) return { kind: "validate", ageMs, ttlMs, request: false }
  // §5.2.1.1 max-age: not older than N seconds
  if (req.maxAge !== undefined && ageMs > req.maxAge * 1000) {
    return { kind: "validate", ageMs, ttlMs, request: true }
  }
  // §5.2.1.3 min-fresh: still fresh N seconds from now
  if (req.minFresh !== undefined && ttlMs < req.minFresh * 1000) return { kind: "validate", ageMs, ttlMs, request: true }
  if (ttlMs > 0) return { kind: "fresh", ageMs, ttlMs }
  if (staleForbidden(s)) return { kind: "validate", ageMs, ttlMs, request: false }
  const staleness = -ttlMs
  // §5.2.1.2 max-stale
  if (req.maxStale !== undefined && staleness <= req.maxStale * 1000) return { kind: "stale", ageMs, ttlMs }
  // RFC 5861 §3
  if (s.cc.staleWhileRevalidate !== undefined && staleness <= s.cc.staleWhileRevalidate * 1000) return { kind: "swr", ageMs, ttlMs }
  return { kind: "validate", ageMs, ttlMs, request: false }
}

/** RFC 5861 §4: on an upstream error (or 500/502/503/504), may the stale response be served instead? */
export const staleOnErrorAllowed = (s: StoredResponse, req: Directives, nowMs: number): boolean => {
  if (staleForbidden(s)) return false
  const window = Math.max(s.cc.staleIfError ?? -1, req.staleIfError ?? -1)
  if (window < 0) return false
  return currentAge(s, nowMs) - s.lifetimeMs <= window * 1000
}

/** How long past its freshness an entry stays stored when it may still be used (see `retentionMs`). */
export const STALE_KEEP_MS = 3_600_000

/**
 * How long the backend keeps an entry: freshness plus the stale windows, then a bounded extra hour
 * while it can still be used: revalidated cheaply with a 304 when it has a validator, or served to a
 * request that accepts it stale (§5.2.1.2 max-stale). Not when it can be neither (no validator, and
 * §4.2.4 must-revalidate, proxy-revalidate, s-maxage or §5.2.2.4 no-cache). The memory backend's
 * LRU bound (max_memory) applies all the same.
 */
export const retentionMs = (s: StoredResponse, nowMs: number): number => {
  const stale = Math.max(s.cc.staleWhileRevalidate ?? 0, s.cc.staleIfError ?? 0) * 1000
  const validator = s.etag !== undefined || s.lastModified !== undefined
  const keep = validator || !(staleForbidden(s) || s.cc.noCache) ? STALE_KEEP_MS : 0
  return Math.max(1000, s.lifetimeMs - currentAge(s, nowMs) + stale + keep)
}
