/**
 * The response filters' verdict on a stored response (a cache hit), as if it came from the upstream
 * now: the head checks, then each body inspector fed the whole stored body (it is in memory already,
 * at most `cache.max_object_size`). A response stored before a rule existed — a reload turned
 * inspection on, or an instance with other rules filled a shared Redis cache — is judged by the
 * rules in force, as Squid's http_reply_access judges hits too.
 */
import type { Blocked } from "../../domain/errors.ts"
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
  for (const make of bodies) {
    const ins = make(req, stored.status, headers)
    if (ins === undefined) continue
    const b = (stored.body.length > 0 ? ins.data(stored.body) : undefined) ?? ins.end()
    if (b !== undefined) return b
  }
  return undefined
}
