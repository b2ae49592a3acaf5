/**
 * Token bucket arithmetic (pure): `burst` tokens at most, refilled at `rate` tokens per second.
 * The same arithmetic runs in the memory backend and, as Lua, inside Redis (RateLimiter.ts).
 */
export interface BucketState {
  tokens: number
  /** Time of the last update, epoch milliseconds. */
  at: number
}

export interface BucketPolicy {
  /** Tokens per second. */
  readonly rate: number
  readonly burst: number
}

export interface Decision {
  readonly allowed: boolean
  /** Whole tokens left after this request. */
  readonly remaining: number
  /** Milliseconds until a refused request could succeed (0 when allowed). */
  readonly retryAfterMs: number
  /** Milliseconds until the bucket is full again. */
  readonly resetMs: number
}

/** Refill `state` up to `now`, then take one token if there is one. Mutates and returns the decision. */
export const take = (state: BucketState, now: number, policy: BucketPolicy): Decision => {
  const elapsed = now > state.at ? now - state.at : 0
  let tokens = Math.min(policy.burst, state.tokens + (elapsed * policy.rate) / 1000)
  state.at = now > state.at ? now : state.at
  const allowed = tokens >= 1
  if (allowed) tokens -= 1
  state.tokens = tokens
  return decisionOf(allowed, tokens, policy)
}

export const decisionOf = (allowed: boolean, tokens: number, policy: BucketPolicy): Decision => ({
  allowed,
  remaining: Math.floor(tokens),
  retryAfterMs: allowed ? 0 : Math.ceil(((1 - tokens) * 1000) / policy.rate),
  resetMs: Math.ceil(((policy.burst - tokens) * 1000) / policy.rate)
})

/** When `state`, left untouched, is full again (epoch ms): from then on it equals a new bucket. */
export const fullAt = (state: BucketState, policy: BucketPolicy): number =>
  state.at + ((policy.burst - state.tokens) * 1000) / policy.rate

/** How long an untouched bucket takes to fill up: after that it equals a new one and can be forgotten. */
export const idleExpiryMs = (policy: BucketPolicy): number => Math.ceil((policy.burst * 1000) / policy.rate)

/**
 * draft-ietf-httpapi-ratelimit-headers (draft-06/07 field syntax):
 *   RateLimit-Policy: 100;w=1;burst=200     RateLimit: limit=200, remaining=17, reset=2
 */
export const policyHeader = (policy: BucketPolicy): string => {
  const { quota, window } = quotaWindow(policy.rate)
  return `${quota};w=${window};burst=${policy.burst}`
}

/**
 * The rate as the draft's whole quota per window in seconds (its quota is an Integer): 100/s → 100;w=1,
 * 0.5/s → 1;w=2, 1.5/s → 3;w=2, 0.3/s → 3;w=10. A rate no window up to an hour makes whole is rounded
 * down over the window in which it gives one request at least.
 */
export const quotaWindow = (rate: number): { readonly quota: number; readonly window: number } => {
  for (let window = 1; window <= 3600; window++) {
    const quota = Math.round(rate * window)
    if (quota >= 1 && Math.abs(quota - rate * window) < 1e-9 * window) return { quota, window }
  }
  const window = Math.max(1, Math.ceil(1 / rate))
  return { quota: Math.max(1, Math.floor(rate * window)), window }
}

export const rateLimitHeader = (d: Decision, policy: BucketPolicy): string =>
  `limit=${policy.burst}, remaining=${d.remaining}, reset=${Math.ceil((d.allowed ? d.resetMs : d.retryAfterMs) / 1000)}`

/** Retry-After in whole seconds (RFC 9110 §10.2.3), at least 1. */
export const retryAfterSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))
