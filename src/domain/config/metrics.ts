import * as Schema from "effect/Schema"
import { ListenHost } from "./listenHost.ts"
import { Port } from "./server.ts"
import { withDefault } from "./withDefault.ts"

/** The `metrics:` section: OpenTelemetry metrics in Prometheus text format. */
export const MetricsSection = Schema.Struct({
  enabled: withDefault(Schema.Boolean, true),
  /** The metrics listener (GET /metrics); port 0 = any free port. */
  host: withDefault(ListenHost, "127.0.0.1"),
  port: withDefault(Port, 9090),
  /** Also answer origin-form GET /metrics on the proxy's own port (it then shadows a backend's /metrics). */
  on_main_port: withDefault(Schema.Boolean, true)
})
export type MetricsSection = typeof MetricsSection.Type
