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
 *  - body being read: `parser.incoming`, the IncomingMessage of the message being parsed, not `complete`;
 *    its `_dump()` drops the rest of it.
 *  - response in flight: `socket._httpMessage`, the ServerResponse that holds the socket.
 */
import type { IncomingMessage, ServerResponse } from "node:http"

const HEAD_BEGAN = Symbol("gatehouse/headBegan")
const ACCEPTED = Symbol("gatehouse/accepted")

interface Parser {
  incoming?: IncomingMessage | null
  socket?: object | null
  [slot: number]: unknown
  readonly constructor: { readonly kOnMessageBegin?: number }
}

interface Connection {
  parser?: Parser | null
  _httpMessage?: ServerResponse | null
  [HEAD_BEGAN]?: bigint | undefined
  [ACCEPTED]?: bigint | undefined
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
    if (socket != null) socket[HEAD_BEGAN] = now()
  }
  /** Puts the stamp on the connection's current parser (a connection handed back to the server gets a new one). */
  const hook = (socket: Connection): void => {
    const parser = socket.parser
    if (parser == null) return
    const slot = parser.constructor.kOnMessageBegin
    if (typeof slot === "number" && parser[slot] !== onMessageBegin) parser[slot] = onMessageBegin
  }
  return {
    accepted: (socket) => {
      const c = socket as Connection
      c[ACCEPTED] = now()
      c[HEAD_BEGAN] = undefined
      hook(c)
    },
    headDelivered: (socket) => {
      const c = socket as Connection
      c[HEAD_BEGAN] = undefined
      hook(c)
    }
  }
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
