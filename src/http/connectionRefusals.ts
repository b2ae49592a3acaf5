/**
 * What the listener answers itself, outside the request pipeline. Each request is answered, logged and
 * counted in the metrics (`route="invalid"`) once, and the connection closed lingering (lingeringClose.ts):
 *  - a head the parser refuses (400 framing, 414, 431: clientError.ts), or that is not complete within
 *    `timeouts.read` (408) — whichever timer notices first: Node's `headersTimeout` check or the
 *    connection's inactivity timeout;
 *  - a header section over `max_header_bytes`, counted as the README says (Node's own count is looser);
 *  - a framing error in the body of a request in flight: answered 400 if nothing was sent yet, and
 *    logged on that request's own line (socketTimeouts.ts), not on a second one.
 * A connection answered and closing produces nothing more: the rest of what its client sends, the
 * parse errors in it and its end are dropped. A connection that never sent a byte is closed at the
 * timeout without an answer or a line (no request was made).
 */
import { type IncomingMessage, METHODS, type ServerResponse } from "node:http"
import type { Duplex } from "node:stream"
import { HeadersTooLarge } from "../domain/errors.ts"
import { newRequestContext } from "../domain/RequestContext.ts"
import { type AccessEntry, accessEntry } from "../services/AccessLog.ts"
import type { MetricsHooks } from "../services/Metrics.ts"
import { EOF_MID_MESSAGE, isParserError, type ParserError, problemForParserError, REQUEST_TIMEOUT, type RequestLine, requestLineOf } from "./clientError.ts"
import { type ConnectionTracker, headBeganAt, headBytes, requestBeganAt, requestReadingBody, responseInFlight } from "./connectionState.ts"
import { type Problem, problemBody, problemBytes, problemFor, writeProblem } from "./errorResponse.ts"
import { closeLingering, isClosing } from "./lingeringClose.ts"
import { cutOnTimeout, markBodyRefused } from "./socketTimeouts.ts"

export interface RefusalDeps {
  readonly maxUrlBytes: number
  readonly maxHeaderBytes: number
  /** `timeouts.read`: how long a head may take (Node's `headersTimeout` is set to the same). */
  readonly readTimeoutMs: number
  /** The monotonic clock the connection tracker stamps with, in nanoseconds. */
  readonly now: () => bigint
  readonly tracker: ConnectionTracker
  readonly requestId: (incoming: string | undefined) => string
  readonly clientIp: (socket: object) => string
  readonly log: (entry: AccessEntry) => void
  /**
   * Where each refusal is counted (`route="invalid"`), as the pipeline counts where it logs. (Optional
   * only until Listener.ts passes its Metrics hooks here.)
   */
  readonly metrics: Pick<MetricsHooks, "request">
}

export interface ConnectionRefusals {
  /** The server's 'clientError' listener. */
  readonly clientError: (err: ParserError, socket: Duplex) => void
  /** The server's 'timeout' listener: `server.timeout` of inactivity, or the keep-alive timeout between requests. */
  readonly timeout: (socket: Duplex) => void
  /** A request head delivered ('request', 'checkContinue', 'checkExpectation'): false when it was answered here. */
  readonly admitRequest: (req: IncomingMessage, res: ServerResponse) => boolean
  /** A CONNECT or Upgrade head delivered: false when it was answered here. */
  readonly admitTunnel: (req: IncomingMessage, socket: Duplex) => boolean
}

/**
 * The size of a header section as the limit counts it: each field line as `name: value` and its
 * CRLF, plus the empty line that ends the section (RFC 9112 §2.1); optional whitespace around a
 * value is not counted. The request line is not part of it (`max_url_bytes` bounds the target).
 */
export const headerSectionBytes = (rawHeaders: ReadonlyArray<string>): number => {
  let n = 2
  for (let i = 0; i < rawHeaders.length; i++) n += rawHeaders[i]!.length + 2
  return n
}

const header = (name: string, value: string): string => `${name}: ${value}\r\n`

/** The methods Node's parser accepts (a head it was still reading began with one of them). */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS)

export const makeConnectionRefusals = (deps: RefusalDeps): ConnectionRefusals => {
  const timedOut = problemForParserError({ name: "Error", message: "", code: REQUEST_TIMEOUT }, deps.maxUrlBytes, deps.maxHeaderBytes)
  const tooLarge = problemFor(new HeadersTooLarge({ limit: deps.maxHeaderBytes }))

  /**
   * Counts and logs a request refused here: `kind` "invalid", its duration from the first byte of its
   * head (or the accept), `bytes_in` 0 (no body was read: it counts bodies, as for every request).
   */
  const record = (socket: object, line: { method: string; url: string }, problem: Problem, bytesOut: number, outcome: string, id: string): void => {
    const now = deps.now()
    const ctx = newRequestContext(id, requestBeganAt(socket) ?? now, deps.clientIp(socket), line.method, line.url)
    ctx.status = problem.status
    ctx.bytesOut = bytesOut
    ctx.outcome = outcome
    deps.metrics.request(ctx, now - ctx.startNs)
    deps.log(accessEntry(ctx, now - ctx.startNs))
  }

  /**
   * The request line of a refused head: in the read the parser refused, or (a head that timed out:
   * no read failed) in the bytes the connection tracker kept of it. Those may begin with the end of an
   * earlier message in the same read: a method Node's parser does not know cannot be this head's.
   */
  const lineOf = (socket: object, err: ParserError): RequestLine | undefined => {
    if (err.rawPacket !== undefined) return requestLineOf(err.rawPacket, err.bytesParsed)
    const line = requestLineOf(headBytes(socket))
    return line !== undefined && KNOWN_METHODS.has(line.method) ? line : undefined
  }

  /** Answers a head that got no further (refused, or timed out), closes, logs its line. */
  const refuseHead = (socket: Duplex, problem: Problem, err: ParserError): void => {
    const line = lineOf(socket, err)
    const known = line !== undefined ? { method: line.method, url: line.target.length <= deps.maxUrlBytes ? line.target : "-" } : { method: "-", url: "-" }
    // a response to an earlier pipelined request still holds the connection: this answer cannot go
    // before it (RFC 9112 §9.3.2), so the connection is cut instead
    const answered = responseInFlight(socket) === undefined
    const id = deps.requestId(undefined)
    record(socket, known, problem, answered ? Buffer.byteLength(problemBody(problem)) : 0, `parse_error:${err.code}`, id)
    if (answered) closeLingering(socket, problemBytes(problem, header("x-request-id", id)))
    else socket.destroy()
  }

  /**
   * A parse error in the body of the request being read: that request's own line tells it. Answered
   * 400 if no response was started; a client that closed mid-body left (499, nothing to answer); with
   * no response holding the connection, the request was answered already and this is its unread body.
   */
  const refuseBody = (socket: Duplex, err: ParserError): void => {
    const res = responseInFlight(socket)
    if (err.code === EOF_MID_MESSAGE || res === undefined || res.headersSent) return void socket.destroy()
    const problem = problemForParserError(err, deps.maxUrlBytes, deps.maxHeaderBytes)
    markBodyRefused(socket, { status: problem.status, outcome: `parse_error:${err.code}`, bytesOut: Buffer.byteLength(problemBody(problem)) })
    closeLingering(socket, problemBytes(problem))
  }

  const clientError = (err: ParserError, socket: Duplex): void => {
    // answered and closing: the rest of what the client sends (and its end) is dropped
    if (isClosing(socket)) return
    // the socket's own error (a reset): nothing to answer; a request in flight is logged by the pipeline
    if (!isParserError(err)) return void socket.destroy()
    if (requestReadingBody(socket) !== undefined) return refuseBody(socket, err)
    // Node's head timer on a connection that never sent a byte: no request was made
    if (err.code === REQUEST_TIMEOUT && headBeganAt(socket) === undefined) return void socket.destroy()
    refuseHead(socket, problemForParserError(err, deps.maxUrlBytes, deps.maxHeaderBytes), err)
  }

  const headTimedOut = (socket: Duplex, began: bigint): void => {
    if (isClosing(socket) || socket.destroyed || headBeganAt(socket) !== began) return
    refuseHead(socket, timedOut, { name: "Error", message: "", code: REQUEST_TIMEOUT })
  }

  const timeout = (socket: Duplex): void => {
    if (isClosing(socket)) return void socket.destroy()
    const began = headBeganAt(socket)
    // a request in flight (logged read_timeout / write_timeout by the pipeline), or an idle connection
    if (began === undefined || responseInFlight(socket) !== undefined || requestReadingBody(socket) !== undefined) return cutOnTimeout(socket)
    const waitedMs = Number(deps.now() - began) / 1e6
    // the keep-alive timeout can be shorter than timeouts.read: the head still has the rest of it
    if (waitedMs < deps.readTimeoutMs) setTimeout(headTimedOut, deps.readTimeoutMs - waitedMs, socket, began).unref()
    else headTimedOut(socket, began)
  }

  /** A delivered head over `max_header_bytes`: its line is logged (431), and its request id returned for the answer. */
  const logOversize = (req: IncomingMessage): string => {
    const rid = req.headers["x-request-id"]
    const id = deps.requestId(typeof rid === "string" ? rid : undefined)
    record(req.socket, { method: req.method ?? "-", url: req.url ?? "-" }, tooLarge, Buffer.byteLength(problemBody(tooLarge)), "HeadersTooLarge", id)
    deps.tracker.headDelivered(req.socket)
    return id
  }

  const admitRequest = (req: IncomingMessage, res: ServerResponse): boolean => {
    const socket = req.socket
    // a request sent after its connection was answered with `Connection: close`: dropped
    if (isClosing(socket)) return false
    if (headerSectionBytes(req.rawHeaders) <= deps.maxHeaderBytes) {
      deps.tracker.headDelivered(socket)
      return true
    }
    writeProblem(res, tooLarge, { id: logOversize(req), status: 0, bytesOut: 0 })
    return false
  }

  /** `stream`: the socket, or (an Upgrade request with a body) a Duplex over it; `req.socket` is the connection. */
  const admitTunnel = (req: IncomingMessage, stream: Duplex): boolean => {
    const socket = req.socket
    if (isClosing(socket)) {
      stream.destroy()
      return false
    }
    if (headerSectionBytes(req.rawHeaders) <= deps.maxHeaderBytes) {
      deps.tracker.headDelivered(socket)
      return true
    }
    closeLingering(stream, problemBytes(tooLarge, header("x-request-id", logOversize(req))))
    return false
  }

  return { clientError, timeout, admitRequest, admitTunnel }
}
