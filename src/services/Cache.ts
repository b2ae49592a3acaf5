/**
 * The RFC 9111 shared cache as a service: a storage backend (memory LRU by bytes, or Redis shared by
 * several instances) plus what is per instance: hit/miss counters and request coalescing (one
 * upstream request per key at a time; followers wait for the leader's stored result).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { hostMatcher, keyMatcher } from "../domain/cache/cacheKey.ts"
import { retentionMs } from "../domain/cache/reuse.ts"
import type { StoredResponse } from "../domain/cache/StoredResponse.ts"
import type { CacheSection } from "../domain/config/cache.ts"
import type { CacheBackend, Found } from "./cache/CacheBackend.ts"
import { makeMemoryBackend } from "./cache/memoryBackend.ts"
import { makeRedisBackend } from "./cache/redisBackend.ts"
import { Config } from "./Config.ts"
import { Lifecycle } from "./Lifecycle.ts"

export interface CacheStats {
  readonly backend: "memory" | "redis"
  readonly available: boolean
  readonly entries: number
  readonly bytes: number
  readonly hits: number
  readonly misses: number
  readonly hit_ratio: number
  readonly evictions: number
  readonly stale_serves: number
  readonly coalesced_requests: number
  readonly stores: number
}

/** Outcome of joining the in-flight table for a key. */
export type Flight =
  /** Go upstream; call `done` exactly once with whether the response was stored (false on failure too). */
  | { readonly _tag: "Leader"; readonly done: (stored: boolean, uncacheable: boolean) => void }
  /** Another request for the key is in flight: wait for it (true: it was stored, look it up again). */
  | { readonly _tag: "Follower"; readonly wait: Effect.Effect<boolean> }
  /** The key recently answered uncacheable: go upstream without coalescing (hit-for-miss). */
  | { readonly _tag: "Solo" }

export interface Counters {
  hit(): void
  miss(): void
  stale(): void
  coalesced(): void
}

/** How long a key that turned out uncacheable skips coalescing (so uncacheable URLs are not serialised). */
const HIT_FOR_MISS_MS = 30_000
const HIT_FOR_MISS_MAX = 10_000
/** A leader that never reports (a failure before its exchange started) releases its followers after this. */
const LEADER_MAX_MS = 60_000

export class Cache extends Context.Service<Cache, {
  readonly settings: CacheSection
  lookup(key: string, signature: (vary: ReadonlyArray<string>) => string): Effect.Effect<Found>
  store(entry: StoredResponse, nowMs: number): Effect.Effect<boolean>
  /** §4.4 and admin: removes every variant stored for a primary key. */
  invalidate(key: string): Effect.Effect<number>
  /** Admin: removes entries whose host (or host + path) matches the glob; undefined for an empty pattern. */
  purge(pattern: string): Effect.Effect<number | undefined>
  readonly stats: Effect.Effect<CacheStats>
  readonly count: Counters
  join(key: string, nowMs: number): Flight
  readonly available: () => boolean
}>()("gatehouse/Cache") {
  static readonly make = (settings: CacheSection, backend: CacheBackend) =>
    Effect.sync(() => {
      const c = { hits: 0, misses: 0, stale: 0, coalesced: 0, stores: 0 }
      const inflight = new Map<string, Deferred.Deferred<boolean>>()
      // Writes not yet acknowledged by the backend (Redis): this instance reads its own writes at once
      const writing = new Map<string, StoredResponse>()
      // ... and an invalidation or purge waits for them: a write landing after the removal would bring
      // the removed response back (§4.4)
      const landed = new Map<string, Deferred.Deferred<void>>()
      const untilLanded = (keys: Iterable<string>): Effect.Effect<void> => {
        const waits: Array<Effect.Effect<void>> = []
        for (const k of keys) {
          const d = landed.get(k)
          if (d !== undefined) waits.push(Deferred.await(d))
        }
        return waits.length === 0 ? Effect.void : Effect.all(waits, { discard: true })
      }
      const hitForMiss = new Map<string, number>()
      const count: Counters = {
        hit: () => { c.hits++ },
        miss: () => { c.misses++ },
        stale: () => { c.stale++ },
        coalesced: () => { c.coalesced++ }
      }
      return Cache.of({
        settings,
        lookup: (key, signature) => {
          const w = writing.get(key)
          if (w === undefined) return backend.get(key, signature)
          if (signature(w.vary) === w.variant) return Effect.succeed<Found>({ entry: w, uriKnown: true, unavailable: false })
          // another variant of a URI this instance is still writing: the URI is known (§4.1
          // vary-miss, not uri-miss) even before Redis has acknowledged the write
          return Effect.map(backend.get(key, signature), (f): Found => (f.unavailable || f.uriKnown ? f : { ...f, uriKnown: true }))
        },
        store: (entry, nowMs) =>
          Effect.suspend(() => {
            const write = backend.put(entry, retentionMs(entry, nowMs)).pipe(
              Effect.map((ok) => {
                if (ok) c.stores++
                return ok
              })
            )
            if (backend.name === "memory") return write // synchronous: visible at once, exact answer
            // Redis: write-behind. The entry is visible to this instance's lookups at once and the
            // caller (the coalescing leader) is not held for the round trip; `stores` counts acks.
            writing.set(entry.key, entry)
            const done = Deferred.makeUnsafe<void>()
            landed.set(entry.key, done)
            const settle = Effect.sync(() => {
              if (writing.get(entry.key) === entry) writing.delete(entry.key)
              if (landed.get(entry.key) === done) landed.delete(entry.key)
              Deferred.doneUnsafe(done, Exit.void)
            })
            return Effect.as(Effect.forkDetach(Effect.ensuring(write, settle)), true)
          }),
        invalidate: (key) => Effect.suspend(() => {
          writing.delete(key)
          return Effect.andThen(untilLanded([key]), backend.remove(key))
        }),
        purge: (pattern) => {
          const hosts = hostMatcher(pattern)
          const keys = keyMatcher(pattern)
          if (hosts === undefined || keys === undefined) return Effect.succeed(undefined)
          return Effect.suspend(() => {
            for (const k of [...writing.keys()]) if (keys(k)) writing.delete(k)
            return Effect.andThen(untilLanded([...landed.keys()].filter(keys)), backend.purge(hosts, keys))
          })
        },
        stats: Effect.map(backend.usage, (u) => ({
          backend: backend.name,
          available: backend.available(),
          entries: u.entries,
          bytes: u.bytes,
          hits: c.hits,
          misses: c.misses,
          hit_ratio: c.hits + c.misses === 0 ? 0 : Math.round((c.hits / (c.hits + c.misses)) * 10_000) / 10_000,
          evictions: u.evictions,
          stale_serves: c.stale,
          coalesced_requests: c.coalesced,
          stores: c.stores
        })),
        count,
        join: (key, nowMs) => {
          const until = hitForMiss.get(key)
          if (until !== undefined) {
            if (until > nowMs) return { _tag: "Solo" }
            hitForMiss.delete(key)
          }
          const existing = inflight.get(key)
          if (existing !== undefined) return { _tag: "Follower", wait: Deferred.await(existing) }
          const d = Deferred.makeUnsafe<boolean>()
          inflight.set(key, d)
          let finished = false
          const done = (stored: boolean, uncacheable: boolean) => {
            if (finished) return
            finished = true
            clearTimeout(timer)
            inflight.delete(key)
            if (uncacheable) {
              if (hitForMiss.size >= HIT_FOR_MISS_MAX) hitForMiss.delete(hitForMiss.keys().next().value!)
              hitForMiss.set(key, nowMs + HIT_FOR_MISS_MS)
            }
            Deferred.doneUnsafe(d, Exit.succeed(stored))
          }
          const timer = setTimeout(() => done(false, false), LEADER_MAX_MS)
          timer.unref()
          return { _tag: "Leader", done }
        },
        available: backend.available
      })
    })

  /** In-process LRU bounded by `cache.max_memory`. */
  static readonly layerMemory = Layer.effect(
    Cache,
    Effect.gen(function*() {
      const { cache } = yield* Config
      const clock = yield* Clock.Clock
      return yield* Cache.make(cache, makeMemoryBackend(cache.max_memory, () => clock.currentTimeMillisUnsafe()))
    })
  )

  /** Shared Redis at `cache.redis_url`; Redis down → lookups miss and stores are skipped. */
  static readonly layerRedis = Layer.effect(
    Cache,
    Effect.gen(function*() {
      const { cache } = yield* Config
      const lifecycle = yield* Lifecycle
      const backend = yield* makeRedisBackend({
        url: cache.redis_url,
        prefix: cache.redis_prefix,
        timeoutMs: 250,
        onState: (problem) => lifecycle.reportDetail("cache_backend", problem)
      })
      return yield* Cache.make(cache, backend)
    })
  )

  /** Picks the backend from `cache.backend` (memory when the cache is off: it then holds nothing). */
  static readonly layer = Layer.unwrap(
    Effect.gen(function*() {
      const { cache } = yield* Config
      return cache.enabled && cache.backend === "redis" ? Cache.layerRedis : Cache.layerMemory
    })
  )
}
