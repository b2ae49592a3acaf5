/**
 * RateLimiter: one behaviour suite run against both backends (memory with TestClock, redis against a
 * real redis-server with server-side time), then the redis failure modes (killed, back again).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import { RateLimitingSettings } from "../../src/domain/config/rateLimiting.ts"
import { Lifecycle } from "../../src/services/Lifecycle.ts"
import { memoryBuckets, RateLimiter } from "../../src/services/RateLimiter.ts"
import { type RunningRedis, startRedis } from "../fixtures/redis.ts"

const settings = (over: Record<string, unknown>) =>
  Schema.decodeUnknownSync(RateLimitingSettings)({ requests_per_second: 1, burst: 3, exempt: [], ...over })

let redis: RunningRedis
beforeAll(async () => { redis = await startRedis() })
afterAll(async () => { await redis.stop() })

let n = 0
const uniqueKey = () => `client-${process.pid}-${++n}-${Math.random().toString(36).slice(2)}`

interface Backend {
  readonly name: string
  readonly layer: (over: Record<string, unknown>) => Layer.Layer<RateLimiter>
  /** Let `ms` pass for the limiter: TestClock for memory, real time for Redis (its clock is the server's). */
  readonly advance: (ms: number) => Effect.Effect<void>
  readonly test: typeof it.effect
}

const backends: ReadonlyArray<Backend> = [
  {
    name: "memory",
    layer: (over) => RateLimiter.layerMemoryWith(settings(over)),
    advance: (ms) => TestClock.adjust(ms),
    test: it.effect
  },
  {
    name: "redis",
    layer: (over) =>
      RateLimiter.layerRedisWith(settings({ redis_url: redis.url, redis_prefix: `t${process.pid}:`, ...over })).pipe(
        Layer.provide(Lifecycle.layer)
      ),
    advance: (ms) => Effect.sleep(ms),
    test: it.live
  }
]

for (const b of backends) {
  describe(`RateLimiter behaviour (${b.name})`, () => {
    b.test("allows a burst of `burst` requests, then refuses with Retry-After (RFC 6585 §4)", () =>
      Effect.gen(function*() {
        const rl = yield* RateLimiter
        const key = uniqueKey()
        const seen = []
        for (let i = 0; i < 4; i++) seen.push(yield* rl.consume(key))
        assert.deepStrictEqual(seen.map((d) => d.allowed), [true, true, true, false])
        assert.deepStrictEqual(seen.slice(0, 3).map((d) => d.remaining), [2, 1, 0])
        const refused = seen[3]!
        assert.isTrue(refused.retryAfterMs > 0 && refused.retryAfterMs <= 1000)
      }).pipe(Effect.provide(b.layer({}))))

    b.test("refills at requests_per_second after the burst is spent", () =>
      Effect.gen(function*() {
        const rl = yield* RateLimiter
        const key = uniqueKey()
        for (let i = 0; i < 3; i++) assert.isTrue((yield* rl.consume(key)).allowed)
        const refused = yield* rl.consume(key)
        assert.isFalse(refused.allowed)
        yield* b.advance(refused.retryAfterMs + 20)
        assert.isTrue((yield* rl.consume(key)).allowed)
        assert.isFalse((yield* rl.consume(key)).allowed)
      }).pipe(Effect.provide(b.layer({}))))

    b.test("keeps one bucket per client", () =>
      Effect.gen(function*() {
        const rl = yield* RateLimiter
        const a = uniqueKey()
        for (let i = 0; i < 3; i++) yield* rl.consume(a)
        assert.isFalse((yield* rl.consume(a)).allowed)
        assert.isTrue((yield* rl.consume(uniqueKey())).allowed)
      }).pipe(Effect.provide(b.layer({}))))

    b.test("admit: 429 error carries Retry-After and RateLimit-Policy; exempt CIDRs skip the limit", () =>
      Effect.gen(function*() {
        const rl = yield* RateLimiter
        const ip = `10.${n % 250}.${(n * 7) % 250}.${Math.floor(Math.random() * 250)}`
        n++
        const first = yield* rl.admit(ip, undefined)
        assert.strictEqual(first?.policy, "1;w=1;burst=3")
        assert.match(first?.state ?? "", /^limit=3, remaining=2, reset=\d+$/)
        yield* rl.admit(ip, undefined)
        yield* rl.admit(ip, undefined)
        const err = yield* Effect.flip(rl.admit(ip, undefined))
        assert.strictEqual(err._tag, "RateLimited")
        if (err._tag === "RateLimited") {
          assert.strictEqual(err.retryAfterSeconds, 1)
          assert.strictEqual(err.key, ip)
        }
        for (let i = 0; i < 5; i++) assert.isUndefined(yield* rl.admit("192.168.7.7", undefined))
      }).pipe(Effect.provide(b.layer({ exempt: ["192.168.7.0/24"] }))))

    b.test("admit keys on the X-Forwarded-For client only behind a trusted proxy (spoofing)", () =>
      Effect.gen(function*() {
        const rl = yield* RateLimiter
        const spoofed = `172.16.${n % 250}.9`
        n++
        // Untrusted peer: its X-Forwarded-For is ignored, so rotating it does not buy new buckets.
        for (let i = 0; i < 3; i++) yield* rl.admit("203.0.113.50", `198.51.100.${i}`)
        assert.strictEqual((yield* Effect.flip(rl.admit("203.0.113.50", "198.51.100.99")))._tag, "RateLimited")
        // Trusted peer: the right-most untrusted X-Forwarded-For address is the client.
        for (let i = 0; i < 3; i++) yield* rl.admit("10.9.9.9", `${spoofed}, 10.9.9.8`)
        const err = yield* Effect.flip(rl.admit("10.9.9.9", spoofed))
        assert.strictEqual(err._tag === "RateLimited" ? err.key : "", spoofed)
      }).pipe(Effect.provide(b.layer({ trusted_proxies: ["10.9.9.0/24"], burst: 3 }))))
  })
}

describe("RateLimiter memory backend bounds (many distinct clients)", () => {
  it("holds at most max_clients buckets and drops each one refill time after it is full again (idle expiry)", () => {
    const buckets = memoryBuckets({ rate: 1, burst: 3 }, 1000)
    for (let i = 0; i < 5000; i++) buckets.take(`c${i}`, 0)
    assert.strictEqual(buckets.size(), 1000)
    // One token taken at rate 1/s: full again at 1 s, dropped a refill time (burst / rate = 3 s) later
    buckets.take("x", 500)
    buckets.take("y", 3_900)
    assert.strictEqual(buckets.size(), 1000)
    buckets.take("z", 4_100)
    assert.strictEqual(buckets.size(), 3)
    buckets.take("w", 20_000)
    assert.strictEqual(buckets.size(), 1)
    // A spent bucket survives while it is not yet full again.
    for (let i = 0; i < 4; i++) buckets.take("busy", 30_000)
    assert.isFalse(buckets.take("busy", 30_500).allowed)
    for (let i = 0; i < 50; i++) buckets.take(`d${i}`, 31_000)
    assert.isTrue(buckets.take("busy", 31_100).allowed)
    assert.isFalse(buckets.take("busy", 31_100).allowed)
  })

  it("threat: limit reset by address rotation — at max_clients a depleted bucket is kept while fuller ones exist", () => {
    const policy = { rate: 0.5, burst: 2 }
    const buckets = memoryBuckets(policy, 3)
    assert.deepStrictEqual([0, 1, 2].map(() => buckets.take("limited", 0).allowed), [true, true, false])
    // six other clients, one request each, through the three places
    for (let i = 0; i < 6; i++) assert.isTrue(buckets.take(`other-${i}`, 100 + i * 100).allowed)
    assert.isAtMost(buckets.size(), 3)
    assert.isFalse(buckets.take("limited", 700).allowed)
  })

  it("at max_clients a bucket that is full again makes room first (free), before any depleted one", () => {
    const buckets = memoryBuckets({ rate: 1, burst: 100 }, 3)
    // "deep": 100 tokens spent at t=0 (full again at 100 s); "shallow": one spent at t=0 (full at 1 s)
    for (let i = 0; i < 100; i++) buckets.take("deep", 0)
    buckets.take("shallow", 0)
    for (let i = 0; i < 50; i++) buckets.take("half", 0)
    // at 1.2 s "shallow" is full again, the other two are not: a new client takes its place
    buckets.take("new", 1_200)
    assert.strictEqual(buckets.size(), 3)
    // "deep" kept its spent bucket (a new one would have 99 left)
    assert.strictEqual(buckets.take("deep", 1_200).remaining, 0)
    // nothing is full: a newcomer replaces the nearest to full ("new", then "newer"), never "deep" or "half"
    buckets.take("newer", 1_300)
    buckets.take("newest", 1_400)
    assert.strictEqual(buckets.size(), 3)
    assert.strictEqual(buckets.take("deep", 1_500).remaining, 0)
    assert.strictEqual(buckets.take("half", 1_500).remaining, 50)
  })
})

describe("RateLimiter redis backend failures", () => {
  it.live("Redis killed: on_backend_error allow admits with a readiness detail; deny refuses; recovers when back", () =>
    Effect.gen(function*() {
      const own = yield* Effect.promise(() => startRedis())
      const base = { redis_url: own.url, redis_timeout: "200ms", burst: 100, requests_per_second: 100 }
      const allowLayer = RateLimiter.layerRedisWith(settings({ ...base, on_backend_error: "allow" })).pipe(Layer.provideMerge(Lifecycle.layer))
      const denyLayer = RateLimiter.layerRedisWith(settings({ ...base, on_backend_error: "deny" })).pipe(Layer.provide(Lifecycle.layer))
      const waitUntil = (check: Effect.Effect<boolean>) =>
        Effect.gen(function*() {
          for (let i = 0; i < 100; i++) {
            if (yield* check) return true
            yield* Effect.sleep(50)
          }
          return false
        })
      yield* Effect.gen(function*() {
        const rl = yield* RateLimiter
        const lifecycle = yield* Lifecycle
        assert.isTrue(yield* waitUntil(rl.consume("k").pipe(Effect.as(true), Effect.orElseSucceed(() => false))))
        assert.isDefined(yield* rl.admit("10.1.1.1", undefined))
        yield* Effect.promise(() => own.kill())
        assert.strictEqual((yield* Effect.flip(rl.consume("k")))._tag, "RateLimiterUnavailable")
        assert.isUndefined(yield* rl.admit("10.1.1.1", undefined))
        assert.match(lifecycle.state().details["rate_limit_backend"] ?? "", /redis/)
        const denied = yield* Effect.scoped(Effect.gen(function*() {
          const ctx = yield* Layer.build(denyLayer)
          const deny = ctx.mapUnsafe.get(RateLimiter.key) as RateLimiter["Service"]
          return yield* Effect.flip(deny.admit("10.1.1.1", undefined))
        }))
        assert.strictEqual(denied._tag, "RateLimiterUnavailable")
        yield* Effect.promise(() => own.restart())
        assert.isTrue(yield* waitUntil(rl.consume("k").pipe(Effect.as(true), Effect.orElseSucceed(() => false))))
        assert.isUndefined(lifecycle.state().details["rate_limit_backend"])
      }).pipe(Effect.provide(allowLayer), Effect.ensuring(Effect.promise(() => own.stop())))
    }), 20_000)
})
