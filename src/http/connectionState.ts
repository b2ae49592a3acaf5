/**
 * Where a client connection of Node's HTTP server stands, read in one place: whether a request head
 * has begun and not yet been delivered (and since when), whether a request body is still being read,
 * whether a response is in flight. Node keeps this on the connection's llhttp parser and socket, not
 * in public API; this file is the only one that reads those fields.
 *
 *  - head begun: the parser's `kOnMessageBegin` callback slot (node_http_parser.cc calls it at the first
 *    byte of each message: the moment Node's own `headersTimeout` counts from), which Node leaves empty,
 *    stamps the time on the socket; a delivered head ('request', 'checkContinue', 'checkExpectation',
 *    'connect', 'upgrade') clears it (`headDelivered`).
 *  - the bytes of a head not yet delivered (for the log line of one that times out: Node's parser keeps
 *    them in C++): the parser's `kOnExecute` callback, which Node calls after each read it parsed
 *    (connection's own bound function, wrapped here), copies the read (`getCurrentBuffer`) only while a
 *    head is still under way after it — a head that arrives whole in one read costs nothing.
 *  - body being read: `parser.incoming`, the IncomingMessage of the message being parsed, not `complete`;
 *    its `_dump()` drops the rest of it.
 *  - response in flight: `socket._httpMessage`, the ServerResponse that holds the socket.
 */
import type { IncomingMessage, ServerResponse } from "node:http"

const HEAD_BEGAN = Symbol("gatehouse/headBegan")
const ACCEPTED = Symbol("gatehouse/accepted")
const HEAD_BYTES = Symbol("gatehouse/headBytes")
const READS = Symbol("gatehouse/reads")

/**
 * How much of a head under way is kept: room for a request line within the default `max_url_bytes`
 * (8 KiB) and what came before it in its read. A longer request line is logged as `-`.
 */
const HEAD_BYTES_KEPT = 16384

interface Parser {
  incoming?: IncomingMessage | null
  socket?: object | null
  getCurrentBuffer?: () => Buffer
  [slot: number]: unknown
  readonly constructor: { readonly kOnMessageBegin?: number; readonly kOnExecute?: number }
}

/** The reads of a head under way, from the one it began in, up to HEAD_BYTES_KEPT bytes in all (keepHeadBytes). */
interface HeadBytes {
  readonly reads: Array<Buffer>
  length: number
}

interface Connection {
  parser?: Parser | null
  _httpMessage?: ServerResponse | null
  [HEAD_BEGAN]?: bigint | undefined
  [ACCEPTED]?: bigint | undefined
  [HEAD_BYTES]?: HeadBytes | undefined
  /** The kOnExecute wrapper installed on the connection's current parser. */
  [READS]?: ((this: Parser, ret: unknown) => unknown) | undefined
}

export interface ConnectionTracker {
  /** At accept, once Node has attached its parser ('connection', or 'secureConnection' for TLS). */
  readonly accepted: (socket: object) => void
  /** The head of the request being parsed reached the server's events (the request-level listeners). */
  readonly headDelivered: (socket: object) => void
}

/** `now`: the monotonic clock, in nanoseconds, that the durations read with `headBeganAt` / `requestBeganAt` use. */
export const makeConnectionTracker = (now: () => bigint): ConnectionTracker => {
  function onMessageBegin(this: Parser): void {
    const socket = this.socket as Connection | null | undefined
    if (socket == null) return
    socket[HEAD_BEGAN] = now()
    // a new head: the bytes kept for the previous one (if any) are not its
    socket[HEAD_BYTES] = undefined
  }
  /** Puts the stamp and the read watch on the connection's current parser (a connection handed back to the server gets a new one). */
  const hook = (socket: Connection): void => {
    const parser = socket.parser
    if (parser == null) return
    const slot = parser.constructor.kOnMessageBegin
    if (typeof slot === "number" && parser[slot] !== onMessageBegin) parser[slot] = onMessageBegin
    watchReads(socket, parser)
  }
  return {
    accepted: (socket) => {
      const c = socket as Connection
      c[ACCEPTED] = now()
      c[HEAD_BEGAN] = undefined
      c[HEAD_BYTES] = undefined
      hook(c)
    },
    headDelivered: (socket) => {
      const c = socket as Connection
      c[HEAD_BEGAN] = undefined
      c[HEAD_BYTES] = undefined
      hook(c)
    }
  }
}

/**
 * Wraps the parser's `kOnExecute` (Node's function bound to this connection, set at accept; Node
 * clears it when the parser is freed, so the wrapper, which holds the socket, goes with it).
 */
const watchReads = (socket: Connection, parser: Parser): void => {
  const slot = parser.constructor.kOnExecute
  if (typeof slot !== "number") return
  const inner = parser[slot]
  if (typeof inner !== "function" || inner === socket[READS]) return
  const onExecute = function(this: Parser, ret: unknown): unknown {
    if (socket[HEAD_BEGAN] !== undefined) keepHeadBytes(socket, this)
    return (inner as (this: Parser, ret: unknown) => unknown).call(this, ret)
  }
  socket[READS] = onExecute
  parser[slot] = onExecute
}

/**
 * A read after which a head is still under way: kept, up to HEAD_BYTES_KEPT bytes in all. Of the read
 * the head began in, from after its last empty line (where a pipelined message after a bodiless one
 * starts; Node does not say where in the read the head began).
 */
const keepHeadBytes = (socket: Connection, parser: Parser): void => {
  const kept = socket[HEAD_BYTES]
  if (kept !== undefined && kept.length >= HEAD_BYTES_KEPT) return
  const read = parser.getCurrentBuffer?.()
  if (read === undefined || read.length === 0) return
  const from = kept === undefined ? afterLastEmptyLine(read) : 0
  const room = HEAD_BYTES_KEPT - (kept?.length ?? 0)
  const part = from === 0 && read.length <= room ? read : Buffer.from(read.subarray(from, from + room))
  if (kept === undefined) socket[HEAD_BYTES] = { reads: [part], length: part.length }
  else {
    kept.reads.push(part)
    kept.length += part.length
  }
}

const afterLastEmptyLine = (read: Buffer): number => {
  const crlf = read.lastIndexOf("\r\n\r\n")
  const lf = read.lastIndexOf("\n\n")
  return Math.max(crlf < 0 ? 0 : crlf + 4, lf < 0 ? 0 : lf + 2)
}

/**
 * The bytes received so far of the head under way (from the start of the read it began in, so an
 * earlier pipelined message may come first), or undefined when none is under way or none were kept.
 */
export const headBytes = (socket: object): Buffer | undefined => {
  const c = socket as Connection
  const kept = c[HEAD_BEGAN] === undefined ? undefined : c[HEAD_BYTES]
  return kept === undefined ? undefined : kept.reads.length === 1 ? kept.reads[0] : Buffer.concat(kept.reads)
}

/** When the first byte of a head not yet delivered arrived; undefined when no head is under way (idle, or no byte yet). */
export const headBeganAt = (socket: object): bigint | undefined => (socket as Connection)[HEAD_BEGAN]

/** When the connection's current request began: the first byte of its head, else the accept. */
export const requestBeganAt = (socket: object): bigint | undefined => {
  const c = socket as Connection
  return c[HEAD_BEGAN] ?? c[ACCEPTED]
}

/** The request whose body the parser is reading (its head delivered, its body not complete), if any. */
export const requestReadingBody = (socket: object): IncomingMessage | undefined => {
  const req = (socket as Connection).parser?.incoming
  return req != null && !req.complete ? req : undefined
}

/**
 * The rest of the body of the request being read is read and dropped: Node's `IncomingMessage._dump`,
 * what the server itself does with a body nobody read once its response is finished. (Resuming is
 * not enough for a body whose reader went away: the parser would push into a destroyed stream and
 * stop reading the connection.)
 */
export const dropRequestBody = (socket: object): void => {
  const req = requestReadingBody(socket) as (IncomingMessage & { _dump?: () => void }) | undefined
  if (req === undefined) return
  if (typeof req._dump === "function") req._dump()
  else req.resume()
}

/**
 * The responses in flight on a server's connections: Node's own list of them (`server[kConnections]`,
 * the ConnectionsList that `closeAllConnections` walks), read only at shutdown.
 */
export const responsesInFlight = (server: object): Array<ServerResponse> => {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === "http.server.connections")
  const list = key === undefined ? undefined : (server as Record<symbol, { all?: () => Array<{ socket?: object | null }> }>)[key]
  const out: Array<ServerResponse> = []
  for (const parser of list?.all?.() ?? []) {
    const res = parser.socket == null ? undefined : responseInFlight(parser.socket)
    if (res !== undefined) out.push(res)
  }
  return out
}

/** The response that holds the connection (being written, or waiting to be), if any. */
export const responseInFlight = (socket: object): ServerResponse | undefined => (socket as Connection)._httpMessage ?? undefined
