import * as Schema from "effect/Schema"
import { withDefault } from "./withDefault.ts"

const HeaderValue = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[^\r\n]*$/, { message: "expected a header value without line breaks" }))
)
const HeaderName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: "expected a header field name" }))
)

/**
 * Response hardening headers (`security.headers`, overridable per route rule with `headers:`).
 * An empty string turns a header off. `override: false` keeps what the upstream set.
 */
export const ResponseHeaders = Schema.Struct({
  enabled: withDefault(Schema.Boolean, true),
  /** Sent only when the client connection is TLS (RFC 6797 §7.2). */
  strict_transport_security: withDefault(HeaderValue, "max-age=31536000; includeSubDomains"),
  content_type_options: withDefault(HeaderValue, "nosniff"),
  frame_options: withDefault(HeaderValue, "DENY"),
  content_security_policy: withDefault(HeaderValue, ""),
  /** Upstream response fields removed, e.g. ["server", "x-powered-by"]. */
  remove: withDefault(Schema.Array(HeaderName), []),
  override: withDefault(Schema.Boolean, false)
})
export type ResponseHeaders = typeof ResponseHeaders.Type

/** Per-route override: any subset of the keys above, merged over `security.headers`. */
export const RouteResponseHeaders = Schema.Struct({
  enabled: Schema.optionalKey(Schema.Boolean),
  strict_transport_security: Schema.optionalKey(HeaderValue),
  content_type_options: Schema.optionalKey(HeaderValue),
  frame_options: Schema.optionalKey(HeaderValue),
  content_security_policy: Schema.optionalKey(HeaderValue),
  remove: Schema.optionalKey(Schema.Array(HeaderName)),
  override: Schema.optionalKey(Schema.Boolean)
})
export type RouteResponseHeaders = typeof RouteResponseHeaders.Type
