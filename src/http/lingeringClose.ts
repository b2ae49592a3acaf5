/**
 * Closing a connection that was answered while its client may still be sending (a 413 before the body
 * was read, a framing error, a head refused or timed out): RFC 9112 §9.6's staged close, as nginx's
 * `lingering_close`. Closing at once would leave the client's next segments to the kernel, which
 * answers them with a reset; a client still sending then sees the reset (EPIPE / ECONNRESET) before
 * it reads the answer, and the answer is lost. Instead: the answer, then a half-close (FIN), then
 * whatever the client still sends is read and dropped until it closes its side, for at most
 * `LINGER_IDLE_MS` without a byte (nginx `lingering_timeout`) and `LINGER_TOTAL_MS` in all
 * (`lingering_time`); then the connection is closed.
 */
import { Socket } from "node:net"
import type { Duplex } from "node:stream"
import { dropRequestBody, requestReadingBody } from "./connectionState.ts"

/** The client sent nothing for this long: it has stopped sending (nginx `lingering_timeout`). */
export const LINGER_IDLE_MS = 5_000
/** A client that keeps sending is cut after this long (nginx `lingering_time`). */
export const LINGER_TOTAL_MS = 30_000

/** Connections answered and closing: what they still bring (bytes, parse errors, requests) is dropped. */
const closing = new WeakSet<object>()

export const isClosing = (socket: object): boolean => closing.has(socket)

/** Writes `answer` (if any), half-closes, drains, closes: each connection once. */
export const closeLingering = (socket: Duplex, answer?: string): void => {
  if (closing.has(socket)) return
  closing.add(socket)
  const s = socket as Socket
  if (!s.writable) return void s.destroy()
  if (answer === undefined) s.end()
  else s.end(answer)
  // the client has closed its side already: nothing more will come, close once the answer is out
  if (s.readableEnded) return void Socket.prototype.destroySoon.call(s)
  const destroy = () => s.destroy()
  // (an Upgrade request with a body comes as a Duplex wrapping the socket: no timer of its own)
  if (typeof s.setTimeout === "function") s.setTimeout(LINGER_IDLE_MS)
  s.once("timeout", destroy)
  s.once("end", destroy)
  const total = setTimeout(destroy, LINGER_TOTAL_MS)
  total.unref()
  s.once("close", () => clearTimeout(total))
  // keep reading, dropping what comes: a body nobody reads any more would stop the parser reading
  // (backpressure), and a socket the parser has let go of (CONNECT, Upgrade) reads only when resumed
  dropRequestBody(s)
  s.resume()
}

/**
 * Node's HTTP server closes a connection after its last response (`Connection: close`) with
 * `socket.destroySoon()`: FIN, then close as soon as the FIN is out. For a connection whose request
 * body is still arriving, this closes lingering instead.
 */
function destroySoonLingering(this: Socket): void {
  if (requestReadingBody(this) === undefined) Socket.prototype.destroySoon.call(this)
  else closeLingering(this)
}

/** At accept: the connection's last response closes it lingering when the client is still sending. */
export const lingerAfterLastResponse = (socket: object): void => {
  ;(socket as Socket).destroySoon = destroySoonLingering
}
