import { Schema } from "effect"
import { LoggingSection } from "./logging.ts"
import { RoutingSection } from "./routing.ts"
import { ServerSection, withDefault } from "./server.ts"

/**
 * The whole configuration, one part per section. Every key has a default, so `{}` decodes.
 * Later sections (security, cache, cli, metrics, tracing) are added here as their own parts.
 */
export const ProxyConfig = Schema.Struct({
  server: withDefault(ServerSection, {}),
  routing: withDefault(RoutingSection, {}),
  logging: withDefault(LoggingSection, {})
})
export type ProxyConfig = typeof ProxyConfig.Type
export type ProxyConfigInput = typeof ProxyConfig.Encoded
