import * as Schema from "effect/Schema"
import { parseCidr } from "../cidr.ts"
import { TimerMs } from "./units.ts"
import { RedisUrl } from "./urls.ts"
import { withDefault } from "./withDefault.ts"

/** An IPv4 or IPv6 CIDR or bare address, checked like `security.access_control` (a bad one fails --check-config). */
const Cidr = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) =>
    parseCidr(s) === undefined ? `expected a CIDR such as "10.0.0.0/8" or "::1/128"` : undefined
  ))
)

const Positive = Schema.Number.pipe(Schema.check(Schema.isGreaterThan(0)))
const PositiveInt = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1)))

/**
 * `security.rate_limiting`: a token bucket per client (RFC 6585 §4 429 over the limit).
 * `requests_per_second` is the refill rate, `burst` the bucket size. `backend: redis` shares one
 * budget per client across every instance using the same Redis (server-side time, atomic script).
 */
export const RateLimitingSettings = Schema.Struct({
  enabled: withDefault(Schema.Boolean, true),
  requests_per_second: withDefault(Positive, 100),
  burst: withDefault(PositiveInt, 200),
  key: withDefault(Schema.Literals(["client_ip"]), "client_ip"),
  /** Peers whose X-Forwarded-For is believed: the client is the right-most address not in this list. */
  trusted_proxies: withDefault(Schema.Array(Cidr), []),
  backend: withDefault(Schema.Literals(["memory", "redis"]), "memory"),
  redis_url: withDefault(RedisUrl, "redis://127.0.0.1:6379"),
  redis_prefix: withDefault(Schema.String, "gatehouse:rl:"),
  /** Per-command bound on a Redis round trip; past it the request gets `on_backend_error`. */
  redis_timeout: withDefault(TimerMs, "250ms"),
  on_backend_error: withDefault(Schema.Literals(["allow", "deny"]), "allow"),
  exempt: withDefault(Schema.Array(Cidr), ["127.0.0.1/32"]),
  /** memory backend: most distinct clients tracked at once (idle buckets expire sooner when full). */
  max_clients: withDefault(PositiveInt, 1_000_000)
})
export type RateLimitingSettings = typeof RateLimitingSettings.Type
