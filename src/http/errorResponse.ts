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
    case "Forbidden":
      return { status: 403, error: "forbidden", detail: `${e.reason} (rule: ${e.rule})` }
    case "NoRoute":
      return { status: 404, error: "no_route", detail: `no route for host "${e.host}" and path "${e.path}" and no default_backend` }
    case "UpstreamError":
      return e.reason === "timeout"
        ? { status: 504, error: "upstream_timeout", detail: `upstream ${e.upstream} timed out` }
        : { status: 502, error: "bad_gateway", detail: `upstream ${e.upstream} failed: ${e.reason}` }
    case "ClientAborted":
      return { status: 499, error: "client_aborted", detail: e.phase, close: true }
  }
}

/** Serialised problem response, as used by the raw-socket paths (clientError, CONNECT). */
export const problemBytes = (p: Problem, extra = ""): string => {
  const body = JSON.stringify({ error: p.error, detail: p.detail }) + "\n"
  let head = `HTTP/1.1 ${p.status} ${STATUS_TEXT[p.status] ?? "Error"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`
  for (const [k, v] of Object.entries(p.headers ?? {})) head += `${k}: ${v}\r\n`
  return `${head}${extra}connection: close\r\n\r\n${body}`
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 413: "Content Too Large",
  414: "URI Too Long", 431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable",
  504: "Gateway Timeout"
}

/** Answer on a ServerResponse if nothing was sent yet; otherwise cut the connection (RFC 9112 §9.6). */
export const writeProblem = (res: ServerResponse, p: Problem, requestId: string): number => {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return res.statusCode
  }
  const body = JSON.stringify({ error: p.error, detail: p.detail }) + "\n"
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-request-id": requestId,
    ...p.headers
  }
  if (p.close === true) headers["connection"] = "close"
  res.writeHead(p.status, headers)
  res.end(body)
  return p.status
}
