/**
 * The one place where a typed failure becomes an HTTP status and a small JSON problem body
 * ({"error","detail"}), never a stack trace.
 */
import type { ServerResponse } from "node:http"
import type { RequestError } from "../domain/errors.ts"

export interface Problem {
  readonly status: number
  readonly error: string
  readonly detail: string
  readonly headers?: Readonly<Record<string, string>>
  /** Close the connection after answering (unread body, framing error). */
  readonly close?: boolean
  /** The policy rule that refused the request (filters), echoed in the JSON body. */
  readonly rule?: string
}

export const problemFor = (e: RequestError): Problem => {
  switch (e._tag) {
    case "BadRequest":
      return { status: 400, error: "bad_request", detail: e.reason, close: true }
    case "UriTooLong":
      return { status: 414, error: "uri_too_long", detail: `request-target is ${e.length} bytes; the limit is ${e.limit}`, close: true }
    case "HeadersTooLarge":
      return { status: 431, error: "headers_too_large", detail: `header section exceeds ${e.limit} bytes`, close: true }
    case "PayloadTooLarge":
      return { status: 413, error: "payload_too_large", detail: `request body exceeds ${e.limit} bytes`, close: true }
    case "NotImplemented":
      return { status: 501, error: "not_implemented", detail: e.reason, close: true }
    case "VersionNotSupported":
      return { status: 505, error: "http_version_not_supported", detail: `HTTP/${e.version} is not supported; use HTTP/1.1`, close: true }
    case "Forbidden":
      return { status: 403, error: "forbidden", detail: `${e.reason} (rule: ${e.rule})` }
    case "Blocked":
      return { status: 403, error: "blocked", detail: e.reason, rule: e.rule, close: e.filter === "ip_acl" }
    case "NoRoute":
      return { status: 404, error: "no_route", detail: `no route for host "${e.host}" and path "${e.path}" and no default_backend` }
    case "UpstreamError":
      return e.reason === "timeout"
        ? { status: 504, error: "upstream_timeout", detail: `upstream ${e.upstream} timed out` }
        : { status: 502, error: "bad_gateway", detail: `upstream ${e.upstream} failed: ${e.reason}` }
    case "ClientAborted":
      return { status: 499, error: "client_aborted", detail: e.phase, close: true }
    case "NotInCache":
      return { status: 504, error: "not_in_cache", detail: `only-if-cached and no usable stored response for ${e.url}`, headers: { "cache-status": "gatehouse; fwd=miss; detail=only-if-cached" } }
    case "RateLimited":
      return {
        status: 429,
        error: "rate_limited",
        detail: `too many requests from ${e.key}; retry in ${e.retryAfterSeconds}s`,
        headers: { "retry-after": String(e.retryAfterSeconds), "ratelimit-policy": e.policy, ratelimit: e.state }
      }
    case "RateLimiterUnavailable":
      return { status: 503, error: "rate_limiter_unavailable", detail: `rate-limit backend ${e.backend} is unavailable`, headers: { "retry-after": "1" } }
    case "ProxyAuthBusy":
      return {
        status: 503,
        error: "proxy_auth_busy",
        detail: "password verification is at capacity; retry shortly",
        headers: { "retry-after": String(e.retryAfterSeconds) }
      }
    case "ProxyAuthRequired":
      return {
        status: 407,
        error: "proxy_auth_required",
        detail: e.reason,
        headers: { "proxy-authenticate": `Basic realm="${e.realm}", charset="UTF-8"` }
      }
    case "Unauthorized":
      return { status: 401, error: "unauthorized", detail: "missing or invalid bearer token", headers: { "www-authenticate": `Bearer realm="${e.realm}"` }, close: true }
    case "CommandNotAllowed":
      return { status: 403, error: "command_not_allowed", detail: e.reason }
    case "TooManyProcesses":
      return { status: 429, error: "too_many_processes", detail: `${e.limit} processes already running`, headers: { "retry-after": String(e.retryAfterSeconds) } }
    case "InvalidBody":
      return { status: 400, error: "invalid_body", detail: e.path === "" ? e.message : `${e.path}: ${e.message}` }
    case "UnsupportedMediaType":
      return { status: 415, error: "unsupported_media_type", detail: `expected Content-Type: ${e.expected}`, close: true }
    case "MethodNotAllowed":
      return { status: 405, error: "method_not_allowed", detail: `use ${e.allow}`, headers: { allow: e.allow }, close: true }
    case "EndpointNotFound":
      return { status: 404, error: "not_found", detail: `no endpoint ${e.path}`, close: true }
    case "ProcessSpawnFailed":
      return { status: 500, error: "spawn_failed", detail: `could not start ${e.command}` }
  }
}

/** The JSON problem document, as sent (its length is the response's Content-Length). */
export const problemBody = (p: Problem): string =>
  JSON.stringify(p.rule === undefined ? { error: p.error, detail: p.detail } : { error: p.error, detail: p.detail, rule: p.rule }) + "\n"

/** Serialised problem response, as used by the raw-socket paths (clientError, CONNECT). */
export const problemBytes = (p: Problem, extra = ""): string => {
  const body = problemBody(p)
  let head = `HTTP/1.1 ${p.status} ${STATUS_TEXT[p.status] ?? "Error"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`
  for (const [k, v] of Object.entries(p.headers ?? {})) head += `${k}: ${v}\r\n`
  return `${head}${extra}connection: close\r\n\r\n${body}`
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 413: "Content Too Large",
  414: "URI Too Long", 431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable",
  504: "Gateway Timeout", 407: "Proxy Authentication Required", 429: "Too Many Requests", 501: "Not Implemented", 505: "HTTP Version Not Supported"
}

/**
 * Answer on a ServerResponse if nothing was sent yet; otherwise cut the connection (RFC 9112 §9.6).
 * Records the status and the bytes written in the request's context, for the access log.
 */
export const writeProblem = (res: ServerResponse, p: Problem, ctx: { readonly id: string; status: number; bytesOut: number }): void => {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    ctx.status = res.statusCode
    return
  }
  const body = problemBody(p)
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-request-id": ctx.id,
    ...p.headers
  }
  if (p.close === true) headers["connection"] = "close"
  res.writeHead(p.status, headers)
  res.end(body)
  ctx.status = p.status
  ctx.bytesOut = headers["content-length"] as number
}
