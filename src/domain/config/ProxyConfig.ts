import * as Schema from "effect/Schema"
import { CacheSection } from "./cache.ts"
import { CliSection } from "./cli.ts"
import { CompressionSection } from "./compression.ts"
import { LoggingSection } from "./logging.ts"
import { MetricsSection } from "./metrics.ts"
import { RoutingSection } from "./routing.ts"
import { SecuritySection } from "./security.ts"
import { ServerSection } from "./server.ts"
import { TracingSection } from "./tracing.ts"
import { UpstreamSection } from "./upstream.ts"
import { withDefault } from "./withDefault.ts"

/**
 * The whole configuration, one part per section. Every key has a default, so `{}` decodes.
 * Later sections (security, cache, cli, metrics, tracing) are added here as their own parts.
 */
export const ProxyConfig = Schema.Struct({
  server: withDefault(ServerSection, {}),
  routing: withDefault(RoutingSection, {}),
  logging: withDefault(LoggingSection, {}),
  security: withDefault(SecuritySection, {}),
  cli: withDefault(CliSection, {}),
  compression: withDefault(CompressionSection, {}),
  upstream: withDefault(UpstreamSection, {}),
  metrics: withDefault(MetricsSection, {}),
  tracing: withDefault(TracingSection, {}),
  cache: withDefault(CacheSection, {})
})
export type ProxyConfig = typeof ProxyConfig.Type
export type ProxyConfigInput = typeof ProxyConfig.Encoded
