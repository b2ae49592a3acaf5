/**
 * Rate limiting: a token bucket per client (security.rate_limiting). Two backends behind one tag:
 * - memory: buckets in two generations of Maps rotated every "idle expiry" (time for an empty bucket
 *   to fill up): a bucket untouched for that long equals a new one and is dropped, so memory is bounded
 *   by the clients seen in two windows (and by `max_clients`). Time comes from `Clock` (TestClock works).
 * - redis: one Lua script per request, atomic, using Redis `TIME` (server-side clock), so every
 *   Gatehouse instance sharing the Redis enforces one budget per client. Redis unreachable → the
 *   configured `on_backend_error` (allow | deny), a warning, a readiness detail; recovers by itself.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createHash } from "node:crypto"
import type { RateLimitingSettings } from "../domain/config/rateLimiting.ts"
import { RateLimited, RateLimiterUnavailable } from "../domain/errors.ts"
import { clientBehindProxies, ipRanges } from "../domain/ipRanges.ts"
import {
  type BucketPolicy,
  type BucketState,
  type Decision,
  decisionOf,
  idleExpiryMs,
  policyHeader,
  rateLimitHeader,
  retryAfterSeconds,
  take
} from "../domain/tokenBucket.ts"
import { Config } from "./Config.ts"
import { Lifecycle } from "./Lifecycle.ts"
import { importRedis, type RedisModule } from "./redisModule.ts"

/** RateLimit-Policy and RateLimit values for an allowed response. */
export interface RateLimitInfo {
  readonly policy: string
  readonly state: string
}

export class RateLimiter extends Context.Service<RateLimiter, {
  /** Take one token for `key` (the backend level; the shared behaviour suite tests this). */
  readonly consume: (key: string) => Effect.Effect<Decision, RateLimiterUnavailable>
  /**
   * Admission for one request from `peer` (socket address) with its X-Forwarded-For: undefined when
   * exempt or disabled; else the header values. Over the limit → RateLimited; backend down and
   * `on_backend_error: deny` → RateLimiterUnavailable.
   */
  readonly admit: (peer: string, forwardedFor: string | undefined) => Effect.Effect<RateLimitInfo | undefined, RateLimited | RateLimiterUnavailable>
}>()("gatehouse/RateLimiter") {
  /** No limit at all (rate_limiting.enabled: false). */
  static readonly layerDisabled = Layer.succeed(RateLimiter, RateLimiter.of({
    consume: () => Effect.succeed({ allowed: true, remaining: Number.MAX_SAFE_INTEGER, retryAfterMs: 0, resetMs: 0 }),
    admit: () => Effect.succeed(undefined)
  }))

  /** In-process buckets (one budget per instance). */
  static readonly layerMemoryWith = (settings: RateLimitingSettings) =>
    Layer.sync(RateLimiter, () => {
      const policy = policyOf(settings)
      const buckets = memoryBuckets(policy, settings.max_clients)
      const consume = (key: string) => Effect.map(Clock.currentTimeMillis, (now) => buckets.take(key, now))
      return RateLimiter.of({ consume, admit: admission(settings, policy, consume, undefined) })
    })

  /** Buckets in Redis: one budget per client across every instance sharing `redis_url`. */
  static readonly layerRedisWith = (settings: RateLimitingSettings) =>
    Layer.effect(RateLimiter, Effect.gen(function*() {
      const lifecycle = yield* Lifecycle
      const context = yield* Effect.context<never>()
      const runLog = Effect.runForkWith(context)
      const policy = policyOf(settings)
      // node-redis is loaded only when a Redis backend is configured (it is ~5 MB of heap otherwise kept alive)
      const redis = yield* Effect.promise(importRedis)
      const backend = yield* Effect.acquireRelease(
        Effect.sync(() => redisBackend(redis, settings, policy, (problem, transition) => {
          lifecycle.reportDetail("rate_limit_backend", problem)
          if (transition) runLog(
            problem === undefined
              ? Effect.logInfo("rate-limit backend redis is back")
              : Effect.logWarning("rate-limit backend redis unavailable").pipe(
                Effect.annotateLogs({ problem, on_backend_error: settings.on_backend_error })
              )
          )
        })),
        (b) => Effect.sync(b.close)
      )
      // Start-up waits a moment for the first connection, never fails: Redis down is a runtime state.
      yield* Effect.promise(() => backend.firstReady(Math.min(Math.max(settings.redis_timeout * 4, 1000), 2 ** 31 - 1)))
      const consume = (key: string) =>
        Effect.callback<Decision, RateLimiterUnavailable>((resume) => {
          backend.take(key).then(
            (d) => resume(Effect.succeed(d)),
            (cause: unknown) => resume(Effect.fail(new RateLimiterUnavailable({ backend: "redis", cause })))
          )
        })
      return RateLimiter.of({ consume, admit: admission(settings, policy, consume, "redis") })
    }))

  static readonly layerMemory = Layer.unwrap(Effect.map(Config, (c) => RateLimiter.layerMemoryWith(c.security.rate_limiting)))
  static readonly layerRedis = Layer.unwrap(Effect.map(Config, (c) => RateLimiter.layerRedisWith(c.security.rate_limiting)))

  /** Picks the backend from config: disabled, memory or redis. */
  static readonly layer = Layer.unwrap(Effect.map(Config, (c) => {
    const s = c.security.rate_limiting
    return !s.enabled
      ? RateLimiter.layerDisabled
      : s.backend === "redis"
      ? RateLimiter.layerRedisWith(s)
      : RateLimiter.layerMemoryWith(s)
  }))
}

const policyOf = (s: RateLimitingSettings): BucketPolicy => ({ rate: s.requests_per_second, burst: s.burst })

const admission = (
  settings: RateLimitingSettings,
  policy: BucketPolicy,
  consume: (key: string) => Effect.Effect<Decision, RateLimiterUnavailable>,
  backendName: string | undefined
) => {
  const exempt = ipRanges(settings.exempt)
  const trusted = ipRanges(settings.trusted_proxies)
  const policyValue = policyHeader(policy)
  const allowOnError = settings.on_backend_error === "allow"
  return (peer: string, forwardedFor: string | undefined): Effect.Effect<RateLimitInfo | undefined, RateLimited | RateLimiterUnavailable> => {
    const client = clientBehindProxies(peer, forwardedFor, trusted)
    if (exempt.has(client)) return Effect.succeed(undefined)
    const decided = Effect.flatMap(consume(client), (d) =>
      d.allowed
        ? Effect.succeed({ policy: policyValue, state: rateLimitHeader(d, policy) })
        : Effect.fail(new RateLimited({
          key: client,
          retryAfterSeconds: retryAfterSeconds(d.retryAfterMs),
          policy: policyValue,
          state: rateLimitHeader(d, policy)
        })))
    return backendName !== undefined && allowOnError
      ? Effect.catchTag(decided, "RateLimiterUnavailable", () => Effect.succeed(undefined))
      : decided
  }
}

/** Two generations of buckets; see the file comment. take(key, nowMs); size() = buckets held. */
export const memoryBuckets = (policy: BucketPolicy, maxClients: number) => {
  const idle = idleExpiryMs(policy)
  let current = new Map<string, BucketState>()
  let previous = new Map<string, BucketState>()
  let rotatedAt = Number.NEGATIVE_INFINITY
  const takeAt = (key: string, now: number): Decision => {
    if (now - rotatedAt >= idle || current.size >= maxClients) {
      previous = now - rotatedAt >= 2 * idle ? new Map() : current
      current = new Map()
      rotatedAt = now
    }
    let state = current.get(key)
    if (state === undefined) {
      state = previous.get(key)
      if (state === undefined) state = { tokens: policy.burst, at: now }
      else previous.delete(key)
      current.set(key, state)
    }
    return take(state, now, policy)
  }
  return { take: takeAt, size: () => current.size + previous.size }
}

/**
 * KEYS[1] bucket; ARGV rate (tokens/s), burst. Server time (TIME) so instances with skewed clocks agree.
 * Returns {allowed 0|1, tokens as string (Lua numbers become integers in replies)}.
 */
const SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'tk', 'at')
local tokens = tonumber(s[1])
local at = tonumber(s[2])
if tokens == nil or at == nil then tokens = burst; at = now end
if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000); at = now end
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tk', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, tostring(tokens)}
`
const SCRIPT_SHA = createHash("sha1").update(SCRIPT).digest("hex")

/** node-redis client with fast failure: no offline queue, a per-command timeout, endless reconnects. */
const redisBackend = (redis: RedisModule, settings: RateLimitingSettings, policy: BucketPolicy, report: (problem: string | undefined, transition: boolean) => void) => {
  let down: string | undefined
  const setDown = (problem: string | undefined) => {
    if (problem === down) return
    const transition = (problem === undefined) !== (down === undefined)
    down = problem
    report(problem, transition)
  }
  const client = redis.createClient({
    url: settings.redis_url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: Math.max(settings.redis_timeout, 1000),
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000)
    }
  })
  client.on("error", (e: unknown) => setDown(`redis unreachable: ${e instanceof Error ? e.message || e.name : String(e)}`))
  client.on("ready", () => setDown(undefined))
  client.connect().catch(() => undefined)
  const rate = String(policy.rate)
  const burst = String(policy.burst)
  const opts = { timeout: settings.redis_timeout }
  const run = async (key: string): Promise<Decision> => {
    let reply: unknown
    try {
      reply = await client.sendCommand(["EVALSHA", SCRIPT_SHA, "1", key, rate, burst], opts)
    } catch (e) {
      if (!(e instanceof Error && e.message.startsWith("NOSCRIPT"))) throw e
      reply = await client.sendCommand(["EVAL", SCRIPT, "1", key, rate, burst], opts)
    }
    const [allowed, tokens] = reply as [number, string]
    return decisionOf(allowed === 1, Number(tokens), policy)
  }
  return {
    firstReady: (ms: number): Promise<void> =>
      client.isReady ? Promise.resolve() : new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms)
        function done() {
          clearTimeout(timer)
          client.off("ready", done)
          resolve()
        }
        client.once("ready", done)
      }),
    take: (key: string): Promise<Decision> =>
      run(settings.redis_prefix + key).then(
        (d) => {
          if (down !== undefined && client.isReady) setDown(undefined)
          return d
        },
        (e: unknown) => {
          setDown(`redis unreachable: ${e instanceof Error ? e.message || e.name : String(e)}`)
          throw e
        }
      ),
    close: () => {
      client.removeAllListeners("ready")
      client.on("error", () => {})
      if (client.isOpen) client.destroy()
    }
  }
}
