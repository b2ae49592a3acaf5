import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { CacheSection } from "../../src/domain/config/cache.ts"
import { makeCacheAdmin } from "../../src/http/cacheAdmin.ts"
import { makeMemoryBackend } from "../../src/services/cache/memoryBackend.ts"
import { Cache } from "../../src/services/Cache.ts"

describe("/admin/cache methods", () => {
  const settings = Schema.decodeUnknownSync(CacheSection)({ enabled: true })
  const admin = makeCacheAdmin(Effect.runSync(Cache.make(settings, makeMemoryBackend(1 << 20, () => 0))))

  it("RFC 9110 §15.5.6 a 405 on the purge endpoint names the only method it supports: Allow: DELETE", () => {
    for (const method of ["GET", "HEAD", "POST", "PUT"]) {
      const a = Effect.runSync(admin(method, "/admin/cache?pattern=x"))
      assert.strictEqual(a?.status, 405, method)
      assert.strictEqual(a?.allow, "DELETE", method)
    }
  })

  it("RFC 9110 §15.5.6 a 405 on the stats endpoint: Allow: GET, HEAD", () => {
    const a = Effect.runSync(admin("DELETE", "/admin/cache/stats"))
    assert.strictEqual(a?.status, 405)
    assert.strictEqual(a?.allow, "GET, HEAD")
  })
})
