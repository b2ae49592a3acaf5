/**
 * Phase 1, validate: what llhttp let through but a proxy must still refuse (RFC 9112 §3.2 one Host,
 * §6.1 Transfer-Encoding in HTTP/1.0), the URL and body limits, and the request-target form
 * (classifyTarget: for origin-form, a Host that is host[:port] and a path without dot-segments that
 * stays under the root, RFC 3986 §5.2.4).
 */
import * as Effect from "effect/Effect"
import type { IncomingMessage } from "node:http"
import type { ServerSection } from "../../domain/config/server.ts"
import { BadRequest, NotImplemented, PayloadTooLarge, UriTooLong, VersionNotSupported } from "../../domain/errors.ts"
import { classifyTarget, type RequestTarget } from "../../domain/requestTarget.ts"

export interface RequestHead {
  readonly target: Exclude<RequestTarget, { form: "invalid" }>
  /** Declared body length, or undefined when chunked/absent. */
  readonly contentLength: number | undefined
  readonly hasBody: boolean
}

/** "chunked", in any case and spacing, and nothing else. */
const isChunkedOnly = (te: string): boolean => te.length === 7 ? te.toLowerCase() === "chunked" : te.trim().toLowerCase() === "chunked"

export const validate = (req: IncomingMessage, server: ServerSection): Effect.Effect<RequestHead, BadRequest | UriTooLong | PayloadTooLarge | NotImplemented | VersionNotSupported> => {
  // llhttp parses any one-digit version; this proxy speaks HTTP/1.x only (RFC 9110 §15.6.6)
  if (req.httpVersionMajor !== 1) return Effect.fail(new VersionNotSupported({ version: req.httpVersion }))
  const url = req.url ?? ""
  const limits = server.limits
  if (url.length > limits.max_url_bytes) return Effect.fail(new UriTooLong({ length: url.length, limit: limits.max_url_bytes }))
  const raw = req.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === "host") hosts++
  if (hosts > 1) return Effect.fail(new BadRequest({ reason: "more than one Host header (RFC 9112 §3.2)" }))
  if (hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
    return Effect.fail(new BadRequest({ reason: "HTTP/1.1 request without Host (RFC 9112 §3.2)" }))
  }
  const te = req.headers["transfer-encoding"]
  if (te !== undefined && req.httpVersionMinor === 0 && req.httpVersionMajor === 1) {
    return Effect.fail(new BadRequest({ reason: "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)" }))
  }
  if (te !== undefined && !isChunkedOnly(te)) {
    // chunked not last: the body's length cannot be known (RFC 9112 §6.3 → 400 and close); a coding
    // before chunked (gzip, chunked) would be lost when relayed de-chunked, so it is refused as
    // nginx does (RFC 9112 §6.1: 501 for a coding not understood)
    const codings = te.toLowerCase().split(",")
    return codings[codings.length - 1]!.trim() === "chunked"
      ? Effect.fail(new NotImplemented({ reason: `Transfer-Encoding "${te}" is not supported; only chunked (RFC 9112 §6.1)` }))
      : Effect.fail(new BadRequest({ reason: "Transfer-Encoding without chunked last (RFC 9112 §6.3)" }))
  }
  const cl = req.headers["content-length"]
  const contentLength = cl === undefined ? undefined : Number(cl)
  if (contentLength !== undefined && contentLength > limits.max_body_bytes) {
    return Effect.fail(new PayloadTooLarge({ length: contentLength, limit: limits.max_body_bytes }))
  }
  const target = classifyTarget(url, req.method ?? "GET", req.headers.host)
  if (target.form === "invalid") return Effect.fail(new BadRequest({ reason: target.reason }))
  return Effect.succeed({ target, contentLength, hasBody: te !== undefined || (contentLength !== undefined && contentLength > 0) })
}
