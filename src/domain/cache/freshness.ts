/** RFC 9111 §4.2: freshness lifetime (§4.2.1) and current age (§4.2.3), in milliseconds (pure). */
import type { Directives } from "./cacheControl.ts"

/** HTTP-date → epoch ms; undefined when absent or invalid. */
export const parseHttpDate = (value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const t = Date.parse(value)
  return Number.isNaN(t) ? undefined : t
}

/** Age header (§5.1): a non-negative integer of seconds; an invalid one is ignored (0). */
export const parseAge = (value: string | undefined): number => {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return 0
  return Math.min(Number(value), 2 ** 31)
}

export interface LifetimeInputs {
  readonly cc: Directives
  readonly dateMs: number | undefined
  /** The raw Expires value (an invalid one means "already expired", §5.3). */
  readonly expires: string | undefined
  readonly responseTimeMs: number
  /** Heuristic lifetime (§4.2.2) when allowed for this response, else 0. */
  readonly heuristicMs: number
}

/**
 * §4.2.1, shared cache: s-maxage, then max-age, then Expires − Date, then the heuristic. A response
 * without Date uses the time it was received as its Date value.
 */
export const freshnessLifetime = (i: LifetimeInputs): number => {
  if (i.cc.sMaxAge !== undefined) return i.cc.sMaxAge * 1000
  if (i.cc.maxAge !== undefined) return i.cc.maxAge * 1000
  if (i.expires !== undefined) {
    const expires = parseHttpDate(i.expires)
    if (expires === undefined) return 0
    return Math.max(0, expires - (i.dateMs ?? i.responseTimeMs))
  }
  return i.heuristicMs
}

/** True when the response carries explicit freshness information (§4.2.1). */
export const hasExplicitFreshness = (cc: Directives, expires: string | undefined): boolean =>
  cc.sMaxAge !== undefined || cc.maxAge !== undefined || expires !== undefined

export interface AgeInputs {
  /** Age header value received with the response, seconds. */
  readonly ageValue: number
  readonly dateMs: number | undefined
  /** When the request that produced the stored response was sent (ms). */
  readonly requestTime: number
  /** When that response was received (ms). */
  readonly responseTime: number
}

/**
 * §4.2.3 current_age:
 *   apparent_age = max(0, response_time - date_value)
 *   corrected_initial_age = max(apparent_age, age_value + (response_time - request_time))
 *   current_age = corrected_initial_age + (now - response_time)
 */
export const currentAge = (a: AgeInputs, nowMs: number): number => {
  const apparentAge = Math.max(0, a.responseTime - (a.dateMs ?? a.responseTime))
  const correctedAgeValue = a.ageValue * 1000 + (a.responseTime - a.requestTime)
  const correctedInitialAge = Math.max(apparentAge, correctedAgeValue)
  return correctedInitialAge + Math.max(0, nowMs - a.responseTime)
}

/** The Age header value to send (§5.1): whole seconds. */
export const ageSeconds = (ageMs: number): number => Math.max(0, Math.floor(ageMs / 1000))
