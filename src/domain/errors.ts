/**
 * Every failure a request can meet, as tagged errors with typed fields. The HTTP status for each
 * is chosen in one place: src/http/errorResponse.ts.
 */
import { Schema } from "effect"

/** Malformed request the parser let through, or one we refuse on RFC 9110/9112 grounds. */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  reason: Schema.String
}) {}

export class UriTooLong extends Schema.TaggedError<UriTooLong>()("UriTooLong", {
  length: Schema.Number,
  limit: Schema.Number
}) {}

export class HeadersTooLarge extends Schema.TaggedError<HeadersTooLarge>()("HeadersTooLarge", {
  limit: Schema.Number
}) {}

export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  length: Schema.Number,
  limit: Schema.Number
}) {}

/** A request refused by policy (CONNECT port, later: domain filter, ACL). */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  reason: Schema.String,
  rule: Schema.String
}) {}

export class NoRoute extends Schema.TaggedError<NoRoute>()("NoRoute", {
  host: Schema.String,
  path: Schema.String
}) {}

/** Why an upstream exchange failed, in the shape of Effect's HttpClientError reasons. */
export const UpstreamFailure = Schema.Literals(["connect", "dns", "reset", "bad_response", "timeout", "tls"])
export type UpstreamFailure = typeof UpstreamFailure.Type

export class UpstreamError extends Schema.TaggedError<UpstreamError>()("UpstreamError", {
  reason: UpstreamFailure,
  upstream: Schema.String,
  /** true when the client already got (part of) a response: nothing can be answered any more. */
  responseStarted: Schema.Boolean,
  cause: Schema.Defect()
}) {}

/** The client went away or sent a broken body; logged, never answered. */
export class ClientAborted extends Schema.TaggedError<ClientAborted>()("ClientAborted", {
  phase: Schema.String
}) {}

/** A bad configuration: stops start-up with the key path, the value and what is expected. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  key: Schema.String,
  value: Schema.String,
  expected: Schema.String,
  source: Schema.String
}) {
  override get message(): string {
    const at = this.key === "" ? "" : ` at ${this.key}`
    const got = this.value === "" ? "" : `: got ${this.value}`
    return `invalid configuration${at}${got}; expected ${this.expected} (${this.source})`
  }
}

export type RequestError =
  | BadRequest
  | UriTooLong
  | HeadersTooLarge
  | PayloadTooLarge
  | Forbidden
  | NoRoute
  | UpstreamError
  | ClientAborted
