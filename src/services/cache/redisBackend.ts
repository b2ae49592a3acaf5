/**
 * Redis backend (node-redis): several Gatehouse instances share one cache. Per primary key one hash
 * `<prefix>e:<key>` holds the Vary field names (`~vary`) and one field per variant (`v:<signature>`),
 * with a TTL covering its longest-lived variant; `<prefix>h:<host>` indexes the keys of a host and
 * `<prefix>hosts` the hosts, for pattern invalidation. Redis down or slow → every call answers
 * "unavailable" within `timeoutMs` and the proxy passes requests through uncached.
 */
import * as Effect from "effect/Effect"
import { splitKey } from "../../domain/cache/cacheKey.ts"
import { decodeStored, encodeStored } from "../../domain/cache/StoredResponse.ts"
import { importRedis, type RedisModule } from "../redisModule.ts"
import { type CacheBackend, type Found, MISS, UNAVAILABLE } from "./CacheBackend.ts"

const VARY_FIELD = "~vary"

const connect = (redis: RedisModule, url: string) =>
  redis.createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 1000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000) }
  }).withTypeMapping({ [redis.RESP_TYPES.BLOB_STRING]: Buffer })

type Client = ReturnType<typeof connect>

export interface RedisBackendOptions {
  readonly url: string
  readonly prefix: string
  /** Per-command bound; past it the call counts as "unavailable". */
  readonly timeoutMs: number
  /** Told when Redis becomes unreachable (a message) and reachable again (undefined): readiness detail. */
  readonly onState: (problem: string | undefined) => void
}

/** Connects (waiting at most ~1 s; it keeps reconnecting in the background) and closes on scope exit. */
export const makeRedisBackend = (o: RedisBackendOptions) =>
  Effect.gen(function*() {
    // node-redis is loaded only when the Redis backend is configured
    const redis = yield* Effect.promise(importRedis)
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const c = connect(redis, o.url)
        // reconnects on its own; state is read through isReady and reported for readiness
        c.on("error", (e: Error) => o.onState(`redis unreachable: ${e.message || "connection error"}`))
        c.on("ready", () => o.onState(undefined))
        o.onState("redis connecting")
        return c
      }),
      // destroy() is synchronous (node-redis 5+): it closes the socket and stops reconnecting
      (c) => Effect.try(() => c.destroy()).pipe(Effect.ignore)
    )
    const ready = Effect.callback<void>((resume) => {
      client.connect().then(() => resume(Effect.void), () => resume(Effect.void))
    })
    yield* ready.pipe(Effect.timeoutOption(1000))
    return makeBackend(client, o)
  })

const makeBackend = (client: Client, o: RedisBackendOptions): CacheBackend => {
  const entryKey = (key: string) => `${o.prefix}e:${key}`
  const hostKey = (host: string) => `${o.prefix}h:${host}`
  const hostsKey = `${o.prefix}hosts`

  /** Runs a command if connected; failures and timeouts become `fallback`. */
  const run = <A>(f: (c: Client) => Promise<A>, fallback: A): Effect.Effect<A> =>
    client.isReady
      ? Effect.tryPromise(() => f(client)).pipe(
        Effect.timeoutOption(o.timeoutMs),
        Effect.map((opt) => (opt._tag === "Some" ? opt.value : fallback)),
        Effect.orElseSucceed(() => fallback)
      )
      : Effect.succeed(fallback)

  const removeKey = (c: Client, key: string): Promise<number> =>
    c.multi().hLen(entryKey(key)).del(entryKey(key)).sRem(hostKey(splitKey(key).host), key).exec()
      .then((r) => Math.max(0, Number(r[0] ?? 0) - 1))

  return {
    name: "redis",
    get: (key, signature) =>
      run<Found>(async (c) => {
        const [vary, plain] = await c.hmGet(entryKey(key), [VARY_FIELD, "v:"]) as Array<Buffer | null>
        if (vary === null || vary === undefined) return MISS
        const names = JSON.parse(vary.toString("utf8")) as Array<string>
        const buf = names.length === 0 ? plain : await c.hGet(entryKey(key), "v:" + signature(names)) as Buffer | null
        const entry = buf === null || buf === undefined ? undefined : decodeStored(buf)
        return { entry, uriKnown: true, unavailable: false }
      }, UNAVAILABLE),
    put: (entry, retentionMs) =>
      run(async (c) => {
        const k = entryKey(entry.key)
        const varyJson = JSON.stringify(entry.vary)
        const prior = await c.hGet(k, VARY_FIELD) as Buffer | null
        const host = splitKey(entry.key).host
        const ttl = Math.ceil(retentionMs)
        const m = c.multi()
        if (prior !== null && prior !== undefined && prior.toString("utf8") !== varyJson) m.del(k)
        await m
          .hSet(k, [VARY_FIELD, varyJson, "v:" + entry.variant, encodeStored(entry)])
          .pExpire(k, ttl, "NX").pExpire(k, ttl, "GT")
          .sAdd(hostKey(host), entry.key)
          .pExpire(hostKey(host), ttl, "NX").pExpire(hostKey(host), ttl, "GT")
          .sAdd(hostsKey, host)
          .exec()
        return true
      }, false),
    remove: (key) => run((c) => removeKey(c, key), 0),
    purge: (hostMatches, keyMatches) =>
      run(async (c) => {
        let n = 0
        const hosts = (await c.sMembers(hostsKey)).map((h) => h.toString())
        for (const host of hosts) {
          if (!hostMatches(host)) continue
          const keys = (await c.sMembers(hostKey(host))).map((k) => k.toString())
          if (keys.length === 0) await c.sRem(hostsKey, host)
          for (const key of keys) if (keyMatches(key)) n += await removeKey(c, key)
        }
        return n
      }, 0),
    usage: run(async (c) => {
      let entries = 0
      let bytes = 0
      let seen = 0
      for await (const batch of c.scanIterator({ MATCH: `${o.prefix}e:*`, COUNT: 500 })) {
        for (const k of batch) {
          if (++seen > 10_000) break
          const [len, mem] = await c.multi().hLen(k).sendCommand(["MEMORY", "USAGE", k]).exec()
          entries += Math.max(0, Number(len ?? 0) - 1)
          bytes += Number(mem ?? 0)
        }
      }
      const info = (await c.info("stats")).toString()
      const evictions = Number(/evicted_keys:(\d+)/.exec(info)?.[1] ?? 0)
      return { entries, bytes, evictions }
    }, { entries: 0, bytes: 0, evictions: 0 }),
    available: () => client.isReady
  }
}
