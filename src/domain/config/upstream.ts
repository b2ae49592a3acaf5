import * as Schema from "effect/Schema"
import { IntBetween, TimeoutMs } from "./units.ts"
import { withDefault } from "./withDefault.ts"

/** The `upstream:` section: the undici connection pools, one per origin. */
export const UpstreamSection = Schema.Struct({
  /**
   * Most connections open to one origin at a time; 0 = no limit (requests beyond it wait in the pool's
   * queue). At most 65535: one address cannot hold more connections to one origin port (TCP ports).
   */
  max_connections_per_origin: withDefault(IntBetween(0, 65535, "a number of connections", " (0 = no limit)"), 0),
  /** How long an idle pooled connection is kept when the origin gives no Keep-Alive hint. */
  keepalive_timeout: withDefault(TimeoutMs, "4s"),
  /** Requests in flight per connection; 1 = no HTTP/1.1 pipelining. */
  pipelining: withDefault(IntBetween(1, 64, "a number of requests", " (1 = no pipelining)"), 1)
})
export type UpstreamSection = typeof UpstreamSection.Type
