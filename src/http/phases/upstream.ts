/**
 * Phase: upstream. Builds the upstream request (hop-by-hop cleaned, forwarding headers added),
 * bridges the bodies natively (client → undici, undici → client) and counts the bytes.
 */
import * as Effect from "effect/Effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { ClientAborted, PayloadTooLarge, type UpstreamError } from "../../domain/errors.ts"
import { downstreamResponseHeaders, type HeaderMap, upstreamRequestHeaders } from "../../domain/hopHeaders.ts"
import type { RequestContext } from "../../domain/RequestContext.ts"
import type { ForwardRequest, ForwardResult, InterimSink, ResponseSink, Upstream } from "../../services/Upstream.ts"
import { relayInterim } from "../interimResponse.ts"
import type { Routed } from "./route.ts"
import type { RequestHead } from "./validate.ts"

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"])

export interface UpstreamPhaseOptions {
  readonly via: string
  readonly maxBodyBytes: number
  readonly maxForwards: number | undefined
  readonly expectContinue: boolean
  /** Response filters (security headers, compression, inspection, cache store) wrap the sink. */
  readonly wrapSink: (sink: ResponseSink) => ResponseSink
  /** W3C traceparent of the upstream span (tracing on), sent instead of the client's. */
  readonly traceparent?: string | undefined
  /** Request header list to send instead of the client's (the cache's revalidation validators). */
  readonly rawHeaders?: ReadonlyArray<string> | undefined
  /** Hears the size of every body chunk relayed either way (the Reclaimer: relayed buffers freed young). */
  readonly relayed: (bytes: number) => void
}

/**
 * Content-Length bodies from this size on are relayed through `relayedBody` so the Reclaimer hears
 * their chunks; smaller ones go to undici as the IncomingMessage itself (no generator per request).
 */
const RELAYED_BODY_MIN = 1024 * 1024

/** Client body with a running byte count; past the limit it stops with PayloadTooLarge. */
async function* countedBody(req: IncomingMessage, ctx: RequestContext, limit: number, overflow: { hit: boolean }, relayed: (bytes: number) => void) {
  for await (const chunk of req as AsyncIterable<Buffer>) {
    relayed(chunk.length)
    ctx.bytesIn += chunk.length
    if (ctx.bytesIn > limit) {
      overflow.hit = true
      throw new Error("request body over max_body_bytes")
    }
    yield chunk
  }
}

/** A large Content-Length body, chunk by chunk, each chunk's size told to `relayed`. */
async function* relayedBody(req: IncomingMessage, relayed: (bytes: number) => void) {
  for await (const chunk of req as AsyncIterable<Buffer>) {
    relayed(chunk.length)
    yield chunk
  }
}

/** The client's end of the response: writes what the (wrapped) sink passes on to `res`, and the 1xx before it. */
export class ClientSink implements ResponseSink, InterimSink {
  readonly res: ServerResponse
  readonly via: string
  readonly relayed: (bytes: number) => void
  /** Body bytes written to the client (after compression): what an exchange failing mid-body sent. */
  bytes = 0
  constructor(res: ServerResponse, via: string, relayed: (bytes: number) => void) {
    this.res = res
    this.via = via
    this.relayed = relayed
  }
  head(status: number, statusText: string | undefined, headers: HeaderMap): void {
    // an answer before the request body has all arrived (an origin's early 413 or 401): the rest of
    // the body will not be read, so the connection cannot be kept (RFC 9112 §9.6; lingeringClose.ts
    // drops what the client still sends)
    if (!this.res.req.complete) this.res.shouldKeepAlive = false
    // (Node's typing lists only string values in a flat header array; its writer takes a field's
    // repeated values as an array there too, as in a header object)
    const out = downstreamResponseHeaders(headers, this.via, status) as Array<string>
    if (statusText === undefined || statusText === "") this.res.writeHead(status, out)
    else this.res.writeHead(status, statusText, out)
  }
  data(chunk: Buffer): boolean {
    this.bytes += chunk.length
    this.relayed(chunk.length)
    return this.res.write(chunk)
  }
  onDrain(resume: () => void): void {
    this.res.once("drain", resume)
  }
  end(trailers: HeaderMap): void {
    const res = this.res
    if (trailers !== null && typeof trailers === "object" && (res as unknown as { chunkedEncoding?: boolean }).chunkedEncoding === true) {
      let any = false
      for (const _ in trailers) { any = true; break }
      if (any) res.addTrailers(trailers as Record<string, string>)
    }
    res.end()
  }
  started(): boolean {
    return this.res.headersSent
  }
  interim(status: number, headers: HeaderMap): void {
    relayInterim(this.res, this.via, status, headers)
  }
}

/** An upstream exchange ready to send: the request, the client's (wrapped) sink, and the failure's meaning. */
export interface PreparedExchange {
  readonly request: ForwardRequest
  readonly sink: ResponseSink
  /** What an upstream failure means for this request: the body limit, a client gone, or the upstream. */
  readonly failure: (e: UpstreamError) => UpstreamError | PayloadTooLarge | ClientAborted
}

/**
 * Builds the upstream request (hop-by-hop cleaned, forwarding headers added), wraps the client's
 * sink with the response filters and sends 100-continue: everything but the sending itself, shared
 * by the Effect exchange (`forwardUpstream`) and the native relay (RequestPipeline).
 */
export const prepareExchange = (
  req: IncomingMessage,
  res: ServerResponse,
  head: RequestHead,
  routed: Routed,
  ctx: RequestContext,
  options: UpstreamPhaseOptions
): PreparedExchange => {
  const method = req.method ?? "GET"
  const overflow = { hit: false }
  let body: IncomingMessage | AsyncIterable<Uint8Array> | null = null
  if (head.hasBody) {
    if (head.contentLength !== undefined) {
      ctx.bytesIn = head.contentLength
      body = head.contentLength >= RELAYED_BODY_MIN ? relayedBody(req, options.relayed) : req
    } else body = countedBody(req, ctx, options.maxBodyBytes, overflow, options.relayed)
  } else {
    // nothing to read: let the request reach 'end' now, so Node releases it from the connection's
    // parser when the response finishes instead of waiting for it (clearIncoming, resOnFinish)
    req.resume()
  }
  const headers = upstreamRequestHeaders(options.rawHeaders ?? req.rawHeaders, routed.backend.poolWritesHost ? undefined : routed.backend.host, {
    clientIp: ctx.clientIp,
    proto: (req.socket as { encrypted?: boolean }).encrypted === true ? "https" : "http",
    host: routed.requestedHost,
    // Via names the version this hop received (RFC 9110 §7.6.3)
    via: req.httpVersionMinor === 0 ? via10(options.via) : options.via,
    requestId: ctx.id,
    maxForwards: options.maxForwards,
    contentLength: head.contentLength === undefined ? undefined : String(head.contentLength),
    traceparent: options.traceparent
  })
  if (options.expectContinue) res.writeContinue()
  const client = new ClientSink(res, options.via, options.relayed)
  return {
    request: {
      origin: routed.backend.origin,
      path: routed.path,
      method,
      headers,
      body,
      retryable: !head.hasBody && IDEMPOTENT.has(method),
      insecureTls: routed.backend.rule?.tls_insecure_skip_verify === true,
      interim: client
    },
    sink: options.wrapSink(client),
    failure: (e) => {
      // the head went out: the client got part of a body before the failure cut it (logged as sent)
      if (res.headersSent) ctx.bytesOut = client.bytes
      if (overflow.hit) return new PayloadTooLarge({ length: ctx.bytesIn, limit: options.maxBodyBytes })
      if (req.destroyed && !req.complete) return new ClientAborted({ phase: "request body" })
      return e
    }
  }
}

/** "1.1 gatehouse" → "1.0 gatehouse", for a request that arrived as HTTP/1.0. */
const via10 = (via: string): string => `1.0${via.slice(via.indexOf(" "))}`

/** The upstream exchange as an Effect (sampled requests: it runs inside their spans). */
export const forwardUpstream = (
  upstream: Upstream["Service"],
  req: IncomingMessage,
  res: ServerResponse,
  head: RequestHead,
  routed: Routed,
  ctx: RequestContext,
  options: UpstreamPhaseOptions
): Effect.Effect<ForwardResult, UpstreamError | PayloadTooLarge | ClientAborted> =>
  Effect.suspend(() => {
    const x = prepareExchange(req, res, head, routed, ctx, options)
    // a client gone mid-response: the log counts what was relayed, as the native relay's cancel does
    return Effect.mapError(upstream.forward(x.request, x.sink, (bytes) => ctx.bytesOut = bytes), x.failure)
  })
