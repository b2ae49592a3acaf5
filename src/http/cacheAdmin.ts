/**
 * /admin/cache endpoints (behind adminAuth.ts like every /admin/* path):
 *   DELETE /admin/cache?pattern=*.example.com   → {"removed": n}   (glob over host, or host + path)
 *   GET    /admin/cache/stats                    → entries, bytes, hits, misses, hit ratio, evictions, ...
 * A 405 names the methods the path does support (RFC 9110 §15.5.6 Allow): `DELETE` for the purge
 * endpoint, `GET, HEAD` for the stats.
 */
import * as Effect from "effect/Effect"
import type { Cache } from "../services/Cache.ts"
import type { ControlAnswer } from "./controlEndpoints.ts"

/** A control answer with the Allow field a 405 must carry (RFC 9110 §15.5.6). */

const STATS_ONLY_GET: ControlAnswer = { status: 405, body: { error: "method_not_allowed", detail: "use GET" }, allow: "GET, HEAD" }
const PURGE_ONLY_DELETE: ControlAnswer = {
  status: 405,
  body: { error: "method_not_allowed", detail: "use DELETE /admin/cache?pattern=<glob>" },
  allow: "DELETE"
}

export const makeCacheAdmin = (cache: Cache["Service"]) =>
  (method: string, path: string): Effect.Effect<ControlAnswer | undefined> => {
    const q = path.indexOf("?")
    const p = q < 0 ? path : path.slice(0, q)
    if (p === "/admin/cache/stats") {
      if (method !== "GET" && method !== "HEAD") return Effect.succeed(STATS_ONLY_GET)
      return Effect.map(cache.stats, (stats) => ({ status: 200, body: { enabled: cache.settings.enabled, ...stats } }))
    }
    if (p !== "/admin/cache") return Effect.succeed(undefined)
    if (method !== "DELETE") return Effect.succeed(PURGE_ONLY_DELETE)
    const pattern = q < 0 ? null : new URLSearchParams(path.slice(q + 1)).get("pattern")
    if (pattern === null || pattern.trim() === "") {
      return Effect.succeed({ status: 400, body: { error: "bad_request", detail: "pattern is required, e.g. ?pattern=*.example.com or ?pattern=example.com/static/*" } })
    }
    return Effect.map(cache.purge(pattern), (removed) => ({ status: 200, body: { pattern, removed: removed ?? 0 } }))
  }
