/**
 * RFC 9111 §5.2 Cache-Control, parsed once per message into a plain record (pure). Unknown
 * directives are ignored (§5.2.3); a malformed delta-seconds makes the directive count as absent,
 * except for max-age/s-maxage where §4.2.1 says treat the response as stale (lifetime 0).
 */

export interface Directives {
  readonly noStore: boolean
  /** Response: stored but must be validated before each use. Request: validate before using a stored response. */
  readonly noCache: boolean
  readonly private: boolean
  readonly public: boolean
  readonly mustRevalidate: boolean
  readonly proxyRevalidate: boolean
  readonly mustUnderstand: boolean
  readonly onlyIfCached: boolean
  /** Seconds; undefined when absent. */
  readonly maxAge: number | undefined
  readonly sMaxAge: number | undefined
  readonly minFresh: number | undefined
  /** Request max-stale: seconds, or Infinity for a bare "max-stale". */
  readonly maxStale: number | undefined
  /** RFC 5861. */
  readonly staleWhileRevalidate: number | undefined
  readonly staleIfError: number | undefined
}

export const NO_DIRECTIVES: Directives = {
  noStore: false, noCache: false, private: false, public: false, mustRevalidate: false, proxyRevalidate: false,
  mustUnderstand: false, onlyIfCached: false, maxAge: undefined, sMaxAge: undefined, minFresh: undefined,
  maxStale: undefined, staleWhileRevalidate: undefined, staleIfError: undefined
}

/** delta-seconds (RFC 9111 §1.2.2): digits only; values past 2^31 are capped there. */
const deltaSeconds = (raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined
  const v = raw.length > 1 && raw.charCodeAt(0) === 34 && raw.charCodeAt(raw.length - 1) === 34 ? raw.slice(1, -1) : raw
  if (!/^\d+$/.test(v)) return undefined
  return Math.min(Number(v), 2 ** 31)
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Splits on commas outside quoted strings ("private=\"a, b\"" stays one directive). */
const splitDirectives = (value: string): Array<string> => {
  const out: Array<string> = []
  let start = 0
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 34) quoted = !quoted
    else if (c === 44 && !quoted) {
      out.push(value.slice(start, i))
      start = i + 1
    }
  }
  out.push(value.slice(start))
  return out
}

export const parseCacheControl = (header: string | ReadonlyArray<string> | undefined): Directives => {
  if (header === undefined) return NO_DIRECTIVES
  const value = typeof header === "string" ? header : header.join(",")
  if (value.trim() === "") return NO_DIRECTIVES
  const d: Mutable<Directives> = { ...NO_DIRECTIVES }
  for (const part of splitDirectives(value)) {
    const eq = part.indexOf("=")
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase()
    const arg = eq < 0 ? undefined : part.slice(eq + 1).trim()
    switch (name) {
      case "no-store": d.noStore = true; break
      // qualified no-cache="field" is treated as unqualified (allowed by §5.2.2.4)
      case "no-cache": d.noCache = true; break
      // qualified private="field": a shared cache then stores nothing at all (§5.2.2.7 permits not storing)
      case "private": d.private = true; break
      case "public": d.public = true; break
      case "must-revalidate": d.mustRevalidate = true; break
      case "proxy-revalidate": d.proxyRevalidate = true; break
      case "must-understand": d.mustUnderstand = true; break
      case "only-if-cached": d.onlyIfCached = true; break
      case "max-age": d.maxAge = arg === undefined ? 0 : (deltaSeconds(arg) ?? 0); break
      case "s-maxage": d.sMaxAge = arg === undefined ? 0 : (deltaSeconds(arg) ?? 0); break
      case "min-fresh": d.minFresh = deltaSeconds(arg); break
      case "max-stale": d.maxStale = arg === undefined ? Infinity : deltaSeconds(arg); break
      case "stale-while-revalidate": d.staleWhileRevalidate = deltaSeconds(arg); break
      case "stale-if-error": d.staleIfError = deltaSeconds(arg); break
    }
  }
  return d
}

/**
 * Request directives (§5.2.1), with §5.4: `Pragma: no-cache` counts as `Cache-Control: no-cache`
 * only when the request has no Cache-Control at all.
 */
export const requestDirectives = (cacheControl: string | undefined, pragma: string | undefined): Directives => {
  if (cacheControl !== undefined) return parseCacheControl(cacheControl)
  if (pragma !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(pragma)) return { ...NO_DIRECTIVES, noCache: true }
  return NO_DIRECTIVES
}
