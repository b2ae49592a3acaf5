/**
 * Rate limiting: a token bucket per client (security.rate_limiting). Two backends behind one tag:
 * - memory: buckets filed by the time each is full again (a full bucket equals a new one): dropped
 *   then, so memory follows the active clients, and at `max_clients` the bucket nearest to full makes
 *   room, never a depleted one while a fuller one exists (memoryBuckets). Time comes from `Clock`.
 * - redis: one Lua script per request, atomic, using Redis `TIME` (server-side clock), so every
 *   Gatehouse instance sharing the Redis enforces one budget per client. Redis unreachable, or no
 *   answer within `redis_timeout` → the configured `on_backend_error` (allow | deny), a warning, a
 *   readiness detail; recovers by itself.
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
  fullAt,
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
      const unavailable = (cause: unknown) => new RateLimiterUnavailable({ backend: "redis", cause })
      // The bound on the whole round trip: node-redis's own `timeout` stops at the socket write, so a
      // written command would wait for a hung Redis forever (and every request with it).
      const consume = (key: string): Effect.Effect<Decision, RateLimiterUnavailable> =>
        Effect.suspend(() => {
          if (backend.stalled()) return Effect.fail(unavailable("redis has not answered a timed-out command yet"))
          const pending = backend.take(key)
          return Effect.callback<Decision, RateLimiterUnavailable>((resume) => {
            pending.then(
              (d) => resume(Effect.succeed(d)),
              (cause: unknown) => resume(Effect.fail(unavailable(cause)))
            )
          }).pipe(
            Effect.timeoutOrElse({
              duration: settings.redis_timeout,
              orElse: () => Effect.fail(unavailable(backend.timedOut(pending)))
            }),
            Effect.map((d) => {
              backend.answered()
              return d
            })
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

/** A client's bucket, linked into the list of its calendar slot (see memoryBuckets). */
interface HeldBucket extends BucketState {
  readonly key: string
  /** Filed at this calendar slot: full again, plus one refill time, before `slot × slotMs`; -1 before filing. */
  slot: number
  prev: HeldBucket | undefined
  next: HeldBucket | undefined
}

/** Calendar slots per refill time (idleExpiryMs): eviction picks a bucket within 1/64 of it of the nearest to full. */
const SLOTS = 64

/**
 * At most `maxClients` buckets, filed in a calendar by the time each is full again (a ring of slots,
 * each a linked list). A full bucket equals a new one, so dropping it is free; dropping a depleted
 * one would forgive its client. So at `maxClients` a new client replaces the bucket nearest to full
 * (or longest full) — one in the earliest slot, within one slot (1/64 of the refill time) of the
 * best — never a depleted bucket while a fuller one is held. Without that pressure a bucket is
 * dropped once it has been full for one more refill time (idle expiry: memory follows the active
 * clients, and a client that comes back meanwhile keeps its bucket). O(1) amortised per take: a
 * bucket is re-linked only when its slot changes and dropped once; eviction resumes its scan where
 * the last one found a bucket.
 * take(key, nowMs); size() = buckets held.
 */
export const memoryBuckets = (policy: BucketPolicy, maxClients: number) => {
  const idleMs = idleExpiryMs(policy)
  const slotMs = Math.max(1, Math.ceil(idleMs / SLOTS))
  // Filed by fullAt + idleMs, so at most 2 × SLOTS + 1 slots ahead of now; one more slot keeps the
  // current one free of new entries.
  const size = 2 * SLOTS + 2
  const heads: Array<HeldBucket | undefined> = new Array<HeldBucket | undefined>(size).fill(undefined)
  const held = new Map<string, HeldBucket>()
  /** Every bucket filed at a slot up to this one has been dropped. */
  let swept = Number.NEGATIVE_INFINITY
  /** No bucket is filed before this slot (eviction starts its scan here). */
  let lowest = Number.NEGATIVE_INFINITY
  /** The clock as seen so far: a clock stepping back does not move slots back. */
  let latest = Number.NEGATIVE_INFINITY

  const link = (b: HeldBucket, slot: number) => {
    const i = slot % size
    const head = heads[i]
    b.slot = slot
    b.prev = undefined
    b.next = head
    if (head !== undefined) head.prev = b
    heads[i] = b
    if (slot < lowest) lowest = slot
  }
  const unlink = (b: HeldBucket) => {
    if (b.prev !== undefined) b.prev.next = b.next
    else heads[b.slot % size] = b.next
    if (b.next !== undefined) b.next.prev = b.prev
  }
  const sweepTo = (nowSlot: number) => {
    if (nowSlot - swept >= size) {
      held.clear()
      heads.fill(undefined)
    } else {
      for (let s = swept + 1; s <= nowSlot; s++) {
        for (let b = heads[s % size]; b !== undefined; b = b.next) held.delete(b.key)
        heads[s % size] = undefined
      }
    }
    swept = nowSlot
  }
  const evictNearestFull = (nowSlot: number) => {
    const from = lowest > nowSlot ? lowest : nowSlot + 1
    for (let s = from; s < nowSlot + size; s++) {
      const b = heads[s % size]
      if (b === undefined) continue
      lowest = s
      unlink(b)
      held.delete(b.key)
      return
    }
  }
  const takeAt = (key: string, time: number): Decision => {
    const now = time > latest ? time : latest
    latest = now
    const nowSlot = Math.floor(now / slotMs)
    if (nowSlot !== swept) sweepTo(nowSlot)
    let b = held.get(key)
    if (b === undefined) {
      if (held.size >= maxClients) evictNearestFull(nowSlot)
      b = { key, tokens: policy.burst, at: now, slot: -1, prev: undefined, next: undefined }
      held.set(key, b)
    }
    const decision = take(b, now, policy)
    const slot = Math.floor((fullAt(b, policy) + idleMs) / slotMs) + 1
    if (slot !== b.slot) {
      if (b.slot >= 0) unlink(b)
      link(b, slot)
    }
    return decision
  }
  return { take: takeAt, size: () => held.size }
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
  const connect = () => {
    const c = redis.createClient({
      url: settings.redis_url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(settings.redis_timeout, 1000),
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000)
      }
    })
    c.on("error", (e: unknown) => setDown(`redis unreachable: ${e instanceof Error ? e.message || e.name : String(e)}`))
    c.on("ready", () => setDown(undefined))
    c.connect().catch(() => undefined)
    return c
  }
  let client = connect()
  /** Bumped when the connection is replaced: a late command of an older one no longer counts as stalled. */
  let generation = 0
  let stalledSince = 0
  /**
   * A stall this long means the connection answers nothing and will not drop either (a hung server
   * behind a proxy, a half-open path after a failover): it is replaced by a new one.
   */
  const renewAfterMs = Math.max(4 * settings.redis_timeout, 1000)
  const renew = () => {
    const old = client
    generation++
    stalled = 0
    client = connect()
    old.removeAllListeners()
    old.on("error", () => {})
    old.destroy()
  }
  const rate = String(policy.rate)
  const burst = String(policy.burst)
  // (node-redis's `timeout` covers only the wait before the command is written; consume bounds the rest)
  const opts = { timeout: settings.redis_timeout }
  /** Commands that outlived redis_timeout and have not been answered (or failed) yet. */
  let stalled = 0
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
      run(settings.redis_prefix + key).catch((e: unknown) => {
        setDown(`redis unreachable: ${e instanceof Error ? e.message || e.name : String(e)}`)
        throw e
      }),
    /** An answer within redis_timeout: Redis is back if it was down (a late answer does not count). */
    answered: () => {
      if (down !== undefined && client.isReady) setDown(undefined)
    },
    /**
     * `late` outlived redis_timeout: Redis is down (hung, or far too slow). Until it answers, the
     * connection drops, or `renewAfterMs` passes (then a new connection is made), `stalled()` is true
     * and no command is sent: each would wait the full timeout
     * and pile up in node-redis's queue. Returns the problem, as the failure's cause.
     */
    timedOut: (late: Promise<Decision>): string => {
      if (stalled === 0) stalledSince = performance.now()
      stalled++
      const gen = generation
      const settled = () => { if (gen === generation) stalled-- }
      late.then(settled, settled)
      const problem = `redis did not answer within ${settings.redis_timeout}ms`
      setDown(problem)
      return problem
    },
    stalled: (): boolean => {
      if (stalled === 0) return false
      if (performance.now() - stalledSince >= renewAfterMs) renew() // the next request uses the new connection
      return true
    },
    close: () => {
      client.removeAllListeners("ready")
      client.on("error", () => {})
      if (client.isOpen) client.destroy()
    }
  }
}
