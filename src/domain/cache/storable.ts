/** RFC 9111 §3: may a shared cache store this response to a GET? (pure) */
import type { Directives } from "./cacheControl.ts"
import { hasExplicitFreshness } from "./freshness.ts"

/** Status codes this cache understands (RFC 9110 §15): needed when must-understand is present (§5.2.2.3). */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 451, 501])
/** RFC 9110 §15.1: heuristically cacheable status codes (§4.2.2). */
export const HEURISTIC_STATUSES: ReadonlySet<number> = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])

export interface StorableInput {
  readonly status: number
  readonly request: Directives
  readonly response: Directives
  /** The request carried Authorization (§3.5). */
  readonly authorization: boolean
  readonly setCookie: boolean
  readonly vary: ReadonlyArray<string> | "*"
  readonly expires: string | undefined
  readonly hasValidator: boolean
  /** default_ttl in ms (0: heuristic freshness off). */
  readonly defaultTtlMs: number
}

/** Why a response was not stored (Cache-Status detail), or undefined when it may be stored. */
export type NotStorable =
  | "status" | "partial" | "no-store" | "private" | "authorization" | "set-cookie" | "vary-star" | "no-freshness"

export const notStorable = (i: StorableInput): NotStorable | undefined => {
  if (i.status === 206) return "partial" // never store partial content we cannot combine (§3.3)
  if (i.status < 200 || i.status === 304) return "status"
  if (i.response.mustUnderstand) {
    // §5.2.2.3: must-understand overrides no-store for understood status codes
    if (!UNDERSTOOD.has(i.status)) return "status"
  } else if (i.response.noStore) return "no-store"
  if (i.request.noStore) return "no-store" // §5.2.1.5
  if (i.response.private) return "private" // §5.2.2.7, shared cache
  // §3.5: a request with Authorization only when the response explicitly allows shared reuse
  if (i.authorization && !(i.response.public || i.response.mustRevalidate || i.response.sMaxAge !== undefined)) return "authorization"
  // Policy: a response setting cookies is never shared between clients.
  if (i.setCookie) return "set-cookie"
  if (i.vary === "*") return "vary-star" // §4.1: would never match
  const explicit = hasExplicitFreshness(i.response, i.expires)
  const heuristic = i.defaultTtlMs > 0 && (HEURISTIC_STATUSES.has(i.status) || i.response.public)
  if (!explicit && !heuristic) {
    // no-cache responses with a validator are stored to be revalidated on every use
    if (!(i.response.noCache && i.hasValidator)) return "no-freshness"
  }
  return undefined
}

/** The heuristic lifetime this response gets (§4.2.2): default_ttl, only without explicit freshness. */
export const heuristicLifetime = (status: number, response: Directives, expires: string | undefined, defaultTtlMs: number): number =>
  defaultTtlMs > 0 && !hasExplicitFreshness(response, expires) && (HEURISTIC_STATUSES.has(status) || response.public) ? defaultTtlMs : 0
