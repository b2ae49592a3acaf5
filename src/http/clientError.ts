/**
 * Requests Node's parser (llhttp, strict mode) refuses before any handler runs: framing conflicts
 * (CL+TE, differing Content-Length, bad Transfer-Encoding), obs-fold, bare CR, NUL, space before the
 * colon, oversize heads, header timeouts. Answered with 400/408/414/431 and the connection closed
 * (RFC 9112 §11.2: a recipient must not guess at framing). Pure functions: what to answer, and what
 * of the request line the refused bytes show (connectionRefusals.ts answers and logs).
 */
import { BadRequest, HeadersTooLarge, UriTooLong } from "../domain/errors.ts"
import { type Problem, problemFor } from "./errorResponse.ts"

export interface ParserError extends Error {
  readonly code?: string
  readonly reason?: string
  /** The bytes of the read that failed (Node's `prepareError`): the head's first bytes, or a later part of it. */
  readonly rawPacket?: Buffer
  /** Where in `rawPacket` the parser stopped. */
  readonly bytesParsed?: number
}

export const REQUEST_TIMEOUT = "ERR_HTTP_REQUEST_TIMEOUT"
/** The client closed its side before the message was complete (Node's parser.finish() at end of input). */
export const EOF_MID_MESSAGE = "HPE_INVALID_EOF_STATE"

/** An error of the HTTP parser or the head timer; anything else is the socket's (a reset: nothing to answer). */
export const isParserError = (err: ParserError): boolean =>
  err.code !== undefined && (err.code.startsWith("HPE_") || err.code === REQUEST_TIMEOUT)

/** Method and request-target of a request line: `token SP target SP HTTP/d.d` (RFC 9112 §3). */
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/\d\.\d\r?$/

export interface RequestLine {
  readonly method: string
  readonly target: string
}

/**
 * The request line of the message the parser refused, when the refused read holds it: the last line
 * that starts a message (at the start of the read, or after an empty line) before where the parser
 * stopped, if it is a whole request line. Undefined when the read began later in the head.
 */
export const requestLineOf = (raw: Buffer | undefined, stoppedAt?: number): RequestLine | undefined => {
  if (raw === undefined || raw.length === 0) return undefined
  const end = stoppedAt === undefined ? raw.length : Math.min(raw.length, stoppedAt + 1)
  let start = 0
  for (let i = raw.indexOf(10); i >= 0 && i < end - 1; i = raw.indexOf(10, i + 1)) {
    // an empty line ends a head: a pipelined message may start after it
    const next = raw[i + 1] === 13 ? i + 2 : i + 1
    if (raw[next] === 10 && next + 1 < end) start = next + 1
  }
  const lf = raw.indexOf(10, start)
  if (lf < 0) return undefined
  const m = REQUEST_LINE.exec(raw.toString("latin1", start, lf))
  return m === null ? undefined : { method: m[1]!, target: m[2]! }
}

/** Length of the first line of the read (up to its LF, or all of it when it has none). */
const firstLineLength = (raw: Buffer | undefined): number => {
  if (raw === undefined) return 0
  const lf = raw.indexOf(10)
  return lf < 0 ? raw.length : lf
}

/** The problem to answer for a parser error (`isParserError`). */
export const problemForParserError = (err: ParserError, maxUrlBytes: number, maxHeaderBytes: number): Problem => {
  switch (err.code) {
    case REQUEST_TIMEOUT:
      return { status: 408, error: "request_timeout", detail: "request head not received in time", close: true }
    case "HPE_HEADER_OVERFLOW": {
      // a whole request line: its target against the URL limit; otherwise the limit was hit inside
      // the first line (a request-target too long to finish) or the read began later in the head
      const line = requestLineOf(err.rawPacket)
      const length = line !== undefined ? line.target.length : firstLineLength(err.rawPacket)
      return length > maxUrlBytes
        ? problemFor(new UriTooLong({ length, limit: maxUrlBytes }))
        : problemFor(new HeadersTooLarge({ limit: maxHeaderBytes }))
    }
    default:
      return problemFor(new BadRequest({ reason: err.reason ?? err.message.replace(/^Parse Error: /, "") }))
  }
}
