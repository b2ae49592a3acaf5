import * as Schema from "effect/Schema"
import { TimerMs } from "./units.ts"
import { withDefault } from "./withDefault.ts"

/** The `upstream:` section: the undici connection pools, one per origin. */
export const UpstreamSection = Schema.Struct({
  /** Most connections open to one origin at a time; 0 = no limit (requests beyond it wait in the pool's queue). */
  max_connections_per_origin: withDefault(Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0))), 0),
  /** How long an idle pooled connection is kept when the origin gives no Keep-Alive hint. */
  keepalive_timeout: withDefault(TimerMs, "4s"),
  /** Requests in flight per connection; 1 = no HTTP/1.1 pipelining. */
  pipelining: withDefault(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 64 }))), 1)
})
export type UpstreamSection = typeof UpstreamSection.Type
