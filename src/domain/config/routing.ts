import * as Schema from "effect/Schema"
import { RouteResponseHeaders } from "./responseHeaders.ts"
import { BackendUrl } from "./urls.ts"
import { withDefault } from "./withDefault.ts"

export const HostPattern = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^(\*\.)?[A-Za-z0-9.-]+(:\d+)?$/, {
    message: `expected a host name such as "api.example.com" or "*.example.com"`
  }))
)

export const RouteRule = Schema.Struct({
  match: Schema.Struct({
    host: Schema.optionalKey(HostPattern),
    path_prefix: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isStartingWith("/"))))
  }),
  forward: Schema.Struct({ target: BackendUrl }),
  /** Response hardening headers for this route, merged over `security.headers`. */
  headers: Schema.optionalKey(RouteResponseHeaders),
  /** Skip certificate verification of an HTTPS target (logged as a warning at start-up). */
  tls_insecure_skip_verify: Schema.optionalKey(Schema.Boolean)
})
export type RouteRule = typeof RouteRule.Type

export const RoutingSection = Schema.Struct({
  default_backend: withDefault(Schema.Union([BackendUrl, Schema.Literal("")]), "http://localhost:8000"),
  rules: withDefault(Schema.Array(RouteRule), [])
})
export type RoutingSection = typeof RoutingSection.Type
