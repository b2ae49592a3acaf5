import * as Schema from "effect/Schema"
import { LifetimeMs, SizeBytes } from "./units.ts"
import { RedisUrl } from "./urls.ts"
import { withDefault } from "./withDefault.ts"

/**
 * The `cache:` section (issue 5): an RFC 9111 shared cache in front of every upstream.
 * Off by default: a transparent proxy must not start caching silently (CACHE_ENABLED=true turns it on).
 */
export const CacheSection = Schema.Struct({
  enabled: withDefault(Schema.Boolean, false),
  backend: withDefault(Schema.Literals(["memory", "redis"]), "memory"),
  /** Memory backend bound, in bytes of stored bodies + headers; least recently used entries go first. */
  max_memory: withDefault(SizeBytes, "256MB"),
  /** Larger responses stream through uncached. */
  max_object_size: withDefault(SizeBytes, "8MB"),
  /** Freshness for responses with no freshness information (heuristic, RFC 9111 §4.2.2); 0 = do not store them. */
  default_ttl: withDefault(LifetimeMs, 0),
  redis_url: withDefault(RedisUrl, "redis://127.0.0.1:6379"),
  /** Prefix of every Redis key the cache writes (instances sharing a cache must use the same one). */
  redis_prefix: withDefault(Schema.String, "gatehouse:cache:")
})
export type CacheSection = typeof CacheSection.Type
