import * as Schema from "effect/Schema"
import { parseCidr } from "../cidr.ts"
import { IntBetween, NumberBetween, TimeoutMs } from "./units.ts"
import { RedisUrl } from "./urls.ts"
import { withDefault } from "./withDefault.ts"

/** An IPv4 or IPv6 CIDR or bare address, checked like `security.access_control` (a bad one fails --check-config). */
const Cidr = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) =>
    parseCidr(s) === undefined ? `expected a CIDR such as "10.0.0.0/8" or "::1/128"` : undefined
  ))
)

/**
 * The refill rate: 0.001/s (one request per ~17 minutes) to 1,000,000/s. Beyond those ends a "limit"
 * is a ban or no limit, and the arithmetic breaks: Infinity made every request 429 with
 * `remaining=NaN`, 1e-300 a RateLimit-Policy window of 1e300 (not a structured-field integer, RFC 8941
 * §3.3.1). Within them the policy's quota and window stay small integers. No limit is `enabled: false`.
 */
const RequestsPerSecond = NumberBetween(
  0.001,
  1_000_000,
  "a rate in requests per second",
  " (to turn rate limiting off: enabled: false, RATE_LIMIT_ENABLED=false)"
)
/** The bucket size: 1 to 10^9 requests (within a 32-bit count, like Envoy's token bucket max_tokens). */
const Burst = IntBetween(1, 1_000_000_000, "a number of requests")
/** Clients tracked at once: a JavaScript Map holds at most 2^24 entries (then it throws). */
const MaxClients = IntBetween(1, 2 ** 24, "a number of clients", " (a JavaScript Map holds at most 2^24 entries)")

/**
 * `security.rate_limiting`: a token bucket per client (RFC 6585 §4 429 over the limit).
 * `requests_per_second` is the refill rate, `burst` the bucket size. `backend: redis` shares one
 * budget per client across every instance using the same Redis (server-side time, atomic script).
 */
export const RateLimitingSettings = Schema.Struct({
  enabled: withDefault(Schema.Boolean, true),
  requests_per_second: withDefault(RequestsPerSecond, 100),
  burst: withDefault(Burst, 200),
  key: withDefault(Schema.Literals(["client_ip"]), "client_ip"),
  /** Peers whose X-Forwarded-For is believed: the client is the right-most address not in this list. */
  trusted_proxies: withDefault(Schema.Array(Cidr), []),
  backend: withDefault(Schema.Literals(["memory", "redis"]), "memory"),
  redis_url: withDefault(RedisUrl, "redis://127.0.0.1:6379"),
  redis_prefix: withDefault(Schema.String, "gatehouse:rl:"),
  /** Per-command bound on a Redis round trip; past it the request gets `on_backend_error`. */
  redis_timeout: withDefault(TimeoutMs, "250ms"),
  on_backend_error: withDefault(Schema.Literals(["allow", "deny"]), "allow"),
  exempt: withDefault(Schema.Array(Cidr), ["127.0.0.1/32"]),
  /** memory backend: most distinct clients tracked at once (idle buckets expire sooner when full). */
  max_clients: withDefault(MaxClients, 1_000_000)
})
export type RateLimitingSettings = typeof RateLimitingSettings.Type
