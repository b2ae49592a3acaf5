import * as Schema from "effect/Schema"
import { NumberBetween } from "./units.ts"
import { HttpUrl } from "./urls.ts"
import { withDefault } from "./withDefault.ts"

/** The `tracing:` section: OpenTelemetry spans exported over OTLP/HTTP (JSON) to Jaeger or any collector. */
export const TracingSection = Schema.Struct({
  enabled: withDefault(Schema.Boolean, false),
  otlp_endpoint: withDefault(HttpUrl, "http://127.0.0.1:4318/v1/traces"),
  /** Share of new traces recorded (0..1); a client's traceparent sampled flag is followed. */
  sample_ratio: withDefault(NumberBetween(0, 1, "a ratio"), 1),
  service_name: withDefault(Schema.String.pipe(Schema.check(Schema.isMinLength(1))), "gatehouse")
})
export type TracingSection = typeof TracingSection.Type
