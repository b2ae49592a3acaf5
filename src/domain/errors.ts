/**
 * Every failure a request can meet, as tagged errors with typed fields. The HTTP status for each
 * is chosen in one place: src/http/errorResponse.ts.
 */
import * as Schema from "effect/Schema"

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

/** A request the proxy understands but cannot relay: a transfer coding other than chunked (RFC 9112 §6.1 → 501). */
export class NotImplemented extends Schema.TaggedError<NotImplemented>()("NotImplemented", {
  reason: Schema.String
}) {}

/** A request line naming a major version other than HTTP/1 (RFC 9110 §15.6.6 → 505). */
export class VersionNotSupported extends Schema.TaggedError<VersionNotSupported>()("VersionNotSupported", {
  version: Schema.String
}) {}

/** A request refused by policy (CONNECT port, later: domain filter, ACL). */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  reason: Schema.String,
  rule: Schema.String
}) {}

/**
 * Refused by a filter (security.filtering / access_control / inspection): `filter` names the filter,
 * `subject` what was judged (host, client address, content), `rule` the rule that decided.
 */
export class Blocked extends Schema.TaggedError<Blocked>()("Blocked", {
  filter: Schema.String,
  subject: Schema.String,
  rule: Schema.String,
  reason: Schema.String
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

/** /cli/execute (issue 3): missing or wrong `Authorization: Bearer` token → 401. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  realm: Schema.String
}) {}

/** /cli/execute: the command is not in cli.allowed_commands → 403 with the reason. */
export class CommandNotAllowed extends Schema.TaggedError<CommandNotAllowed>()("CommandNotAllowed", {
  command: Schema.String,
  reason: Schema.String
}) {}

/** /cli/execute: cli.max_concurrent processes already running → 429 + Retry-After. */
export class TooManyProcesses extends Schema.TaggedError<TooManyProcesses>()("TooManyProcesses", {
  limit: Schema.Number,
  retryAfterSeconds: Schema.Number
}) {}

/** A JSON body that fails its Schema → 400 naming the field path. */
export class InvalidBody extends Schema.TaggedError<InvalidBody>()("InvalidBody", {
  path: Schema.String,
  message: Schema.String
}) {}

export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()("UnsupportedMediaType", {
  expected: Schema.String
}) {}

export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", {
  allow: Schema.String
}) {}

/** A control endpoint that is switched off answers as if absent. */
export class EndpointNotFound extends Schema.TaggedError<EndpointNotFound>()("EndpointNotFound", {
  path: Schema.String
}) {}

/** An allowed program could not be started (missing, not executable, bad working_dir). */
export class ProcessSpawnFailed extends Schema.TaggedError<ProcessSpawnFailed>()("ProcessSpawnFailed", {
  command: Schema.String,
  cause: Schema.Defect()
}) {}

/** Over the client's rate limit (RFC 6585 §4) → 429 with Retry-After and RateLimit headers. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  key: Schema.String,
  retryAfterSeconds: Schema.Number,
  /** RateLimit-Policy / RateLimit field values (draft-ietf-httpapi-ratelimit-headers). */
  policy: Schema.String,
  state: Schema.String
}) {}

/** The shared rate-limit backend (Redis) is unreachable and `on_backend_error: deny` → 503. */
export class RateLimiterUnavailable extends Schema.TaggedError<RateLimiterUnavailable>()("RateLimiterUnavailable", {
  backend: Schema.String,
  cause: Schema.Defect()
}) {}

/**
 * Password verification is at its bound (every slot busy, its queue full): the proxy is overloaded,
 * not this client wrong → 503 + Retry-After (RFC 9110 §15.6.4), never a 407 that would make the
 * client drop good credentials.
 */
export class ProxyAuthBusy extends Schema.TaggedError<ProxyAuthBusy>()("ProxyAuthBusy", {
  retryAfterSeconds: Schema.Number
}) {}

/** Proxy authentication missing or wrong (RFC 9110 §15.5.8) → 407 with Proxy-Authenticate. */
export class ProxyAuthRequired extends Schema.TaggedError<ProxyAuthRequired>()("ProxyAuthRequired", {
  realm: Schema.String,
  reason: Schema.String
}) {}

/** `Cache-Control: only-if-cached` and no usable stored response (RFC 9111 §5.2.1.7) → 504. */
export class NotInCache extends Schema.TaggedError<NotInCache>()("NotInCache", {
  url: Schema.String
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
  | NotImplemented
  | VersionNotSupported
  | Forbidden
  | Blocked
  | NoRoute
  | UpstreamError
  | ClientAborted
  | NotInCache
  | RateLimited
  | RateLimiterUnavailable
  | ProxyAuthBusy
  | ProxyAuthRequired
  | Unauthorized
  | CommandNotAllowed
  | TooManyProcesses
  | InvalidBody
  | UnsupportedMediaType
  | MethodNotAllowed
  | EndpointNotFound
  | ProcessSpawnFailed
