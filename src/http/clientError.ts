/**
 * Requests Node's parser (llhttp, strict mode) refuses before any handler runs: framing conflicts
 * (CL+TE, differing Content-Length, bad Transfer-Encoding), obs-fold, bare CR, NUL, space before the
 * colon, oversize heads, header timeouts. Answered with 400/408/414/431 and the connection closed
 * (RFC 9112 §11.2: a recipient must not guess at framing).
 */
import type { Duplex } from "node:stream"
import { BadRequest, HeadersTooLarge, UriTooLong } from "../domain/errors.ts"
import { type Problem, problemBytes, problemFor } from "./errorResponse.ts"

export interface ParserError extends Error {
  readonly code?: string
  readonly reason?: string
  readonly rawPacket?: Buffer
}

const firstLineLength = (raw: Buffer | undefined): number => {
  if (raw === undefined) return 0
  const lf = raw.indexOf(10)
  return lf < 0 ? raw.length : lf
}

/** The problem to answer for a parser error, or undefined when nothing should be written. */
export const problemForParserError = (err: ParserError, maxUrlBytes: number, maxHeaderBytes: number): Problem | undefined => {
  switch (err.code) {
    case "ECONNRESET":
    case "EPIPE":
      return undefined
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, error: "request_timeout", detail: "request head not received in time", close: true }
    case "HPE_HEADER_OVERFLOW": {
      const line = firstLineLength(err.rawPacket)
      return line > maxUrlBytes
        ? problemFor(new UriTooLong({ length: line, limit: maxUrlBytes }))
        : problemFor(new HeadersTooLarge({ limit: maxHeaderBytes }))
    }
    default:
      return problemFor(new BadRequest({ reason: err.reason ?? err.message.replace(/^Parse Error: /, "") }))
  }
}

export const answerParserError = (sock: Duplex, problem: Problem | undefined): void => {
  if (problem !== undefined && sock.writable) sock.end(problemBytes(problem))
  else sock.destroy()
}
