/**
 * Proxy authentication (RFC 9110 §11.7.1, Basic per RFC 7617) for forward-proxy and CONNECT requests
 * when `security.proxy_auth.users` is not empty. Passwords are stored as bcrypt or scrypt hashes
 * (domain/passwordHash.ts). The header is hop-by-hop: it is never forwarded (hopHeaders.ts).
 *
 * Password hashing is slow on purpose, so its cost is bounded for the whole process, not only per
 * client (the rate limit runs before this, but admits far more attempts than one core can hash):
 * - a verified Proxy-Authorization value is remembered by its SHA-256 for VERIFIED_TTL_MS (Squid's
 *   credentialsttl), a wrong one too: a returning client, or a repeated guess, costs no hash;
 * - concurrent requests with the same value share one verification;
 * - verifications run in two small pools: bcrypt (bcryptjs, JavaScript on the event loop) one at a
 *   time, started from setImmediate, so at most one ~100 ms bcryptjs chunk runs between two turns
 *   of I/O and every other request and /health keep being served; scrypt (libuv's thread pool) two
 *   at a time, leaving threads for dns.lookup. Each pool queues QUEUE_MAX more; past that a new
 *   credential is refused at once with 503 + Retry-After: 1 (an overload of the proxy, not this
 *   client's fault, so not 429 and not 407, which would make a client drop good credentials).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createHash } from "node:crypto"
import type { ProxyAuthSettings } from "../domain/config/identity.ts"
import { ProxyAuthBusy, ProxyAuthRequired } from "../domain/errors.ts"
import { hashKind, standInHash, verifyPassword } from "../domain/passwordHash.ts"
import { makeBcryptVerifier } from "./bcryptWorker.ts"
import { Config } from "./Config.ts"

const CACHE_MAX = 10_000
/** How long a verified credential is trusted without hashing again. */
const VERIFIED_TTL_MS = 5 * 60_000
const BCRYPT_CONCURRENCY = 1
const SCRYPT_CONCURRENCY = 2
/** Verifications waiting per pool (16 bcrypt cost-10 hashes are ~1-2 s of work). */
const QUEUE_MAX = 16

/** "Basic dXNlcjpwdw==" → { user, password }, or undefined when not Basic or malformed. */
export const parseBasic = (header: string): { user: string; password: string } | undefined => {
  const m = /^basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(header)
  if (m === null) return undefined
  const text = Buffer.from(m[1]!, "base64").toString("utf8")
  const colon = text.indexOf(":")
  return colon < 0 ? undefined : { user: text.slice(0, colon), password: text.slice(colon + 1) }
}

/**
 * At most `concurrency` verifications running and `queueMax` waiting; undefined when both are full.
 * A slot is held until the hash is done, even if every request waiting for it has gone: a client that
 * disconnects cannot free a slot while its hash still runs.
 */
const verificationPool = (concurrency: number, queueMax: number) => {
  let running = 0
  const waiting: Array<() => void> = []
  const finished = () => {
    const next = waiting.shift()
    if (next === undefined) running--
    else next()
  }
  return (work: () => Promise<boolean>): Promise<boolean> | undefined => {
    if (running >= concurrency && waiting.length >= queueMax) return undefined
    return new Promise<boolean>((resolve, reject) => {
      // Started from the check phase: bcryptjs runs its first chunk synchronously, and a chunk run
      // from a promise callback would follow the previous one without I/O in between.
      const start = () =>
        setImmediate(() =>
          work().then(
            (ok) => { finished(); resolve(ok) },
            (e: unknown) => { finished(); reject(e) }
          )
        )
      if (running < concurrency) {
        running++
        start()
      } else waiting.push(start)
    })
  }
}

export class ProxyAuth extends Context.Service<ProxyAuth, {
  /** false: no users configured, every request passes without a check. */
  readonly enabled: boolean
  /**
   * Checks a Proxy-Authorization value; missing or wrong → ProxyAuthRequired (407); too many
   * verifications already running and queued → ProxyAuthBusy (503 + Retry-After).
   */
  readonly check: (header: string | undefined) => Effect.Effect<void, ProxyAuthRequired | ProxyAuthBusy>
}>()("gatehouse/ProxyAuth") {
  static readonly layerWith = (settings: ProxyAuthSettings) =>
    Layer.effect(ProxyAuth, Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const users = new Map(Object.entries(settings.users))
      if (users.size === 0) return ProxyAuth.of({ enabled: false, check: () => Effect.void })
      // bcrypt hashes run in a worker thread (made on the first one), scrypt in libuv's pool
      const bcryptVerifier = yield* Effect.acquireRelease(
        Effect.sync(makeBcryptVerifier),
        (v) => Effect.promise(() => v.close())
      )
      const hashes = [...users.values()]
      const realm = settings.realm
      const pools = {
        bcrypt: verificationPool(BCRYPT_CONCURRENCY, QUEUE_MAX),
        scrypt: verificationPool(SCRYPT_CONCURRENCY, QUEUE_MAX)
      }
      /** Proxy-Authorization digest → time until which it is trusted. */
      const good = new Map<string, number>()
      const bad = new Set<string>()
      const inflight = new Map<string, Promise<boolean>>()
      const refuse = (reason: string) => Effect.fail(new ProxyAuthRequired({ realm, reason }))
      const busy = Effect.fail(new ProxyAuthBusy({ retryAfterSeconds: 1 }))

      /** Starts (or joins) the verification of `header`; undefined when its pool is full. */
      const verification = (key: string, header: string): Promise<boolean> | "malformed" | undefined => {
        const running = inflight.get(key)
        if (running !== undefined) return running
        const creds = parseBasic(header)
        if (creds === undefined) return "malformed"
        const stored = users.get(creds.user)
        // An unknown user is checked against a configured hash too, so its name is not revealed by
        // timing or by which pool it waits in (see standInHash).
        const against = stored ?? standInHash(hashes, creds.user)
        const started = pools[hashKind(against)](() =>
          (hashKind(against) === "bcrypt" ? bcryptVerifier.verify(creds.password, against) : verifyPassword(creds.password, against))
            .then((ok) => ok && stored !== undefined)
        )
        if (started === undefined) return undefined
        inflight.set(key, started)
        const forget = () => inflight.delete(key)
        started.then(forget, forget)
        return started
      }

      const settle = (key: string, ok: boolean): Effect.Effect<void, ProxyAuthRequired> =>
        ok
          ? Effect.sync(() => {
            if (good.size >= CACHE_MAX) good.clear()
            good.set(key, clock.currentTimeMillisUnsafe() + VERIFIED_TTL_MS)
          })
          : Effect.suspend(() => {
            if (bad.size >= CACHE_MAX) bad.clear()
            bad.add(key)
            return refuse("invalid proxy credentials")
          })

      const verify = (key: string, header: string): Effect.Effect<void, ProxyAuthRequired | ProxyAuthBusy> => {
        const started = verification(key, header)
        if (started === undefined) return busy
        if (started === "malformed") return refuse("expected Proxy-Authorization: Basic credentials")
        return Effect.flatMap(Effect.promise(() => started), (ok) => settle(key, ok))
      }

      return ProxyAuth.of({
        enabled: true,
        check: (header) => {
          if (header === undefined || header === "") return refuse("proxy authentication required")
          const key = createHash("sha256").update(header).digest("base64")
          // (a remembered credential decides at once: an Exit, no fiber for the request's decision)
          const until = good.get(key)
          if (until !== undefined) {
            if (clock.currentTimeMillisUnsafe() < until) return Effect.void
            good.delete(key)
            return verify(key, header)
          }
          if (bad.has(key)) return refuse("invalid proxy credentials")
          return verify(key, header)
        }
      })
    }))

  static readonly layer = Layer.unwrap(Effect.map(Config, (c) => ProxyAuth.layerWith(c.security.proxy_auth)))
}
