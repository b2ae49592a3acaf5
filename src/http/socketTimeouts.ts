/**
 * Connections the server itself cut while a request was in flight, kept so the access log can tell
 * them from clients that left:
 *  - by its inactivity timeout (`server.timeout`, the larger of `timeouts.read` and `timeouts.write`):
 *    a request whose body stopped arriving is logged 408 `read_timeout` (nginx's client_body_timeout),
 *    one whose client stopped reading the response `write_timeout`;
 *  - after the parser refused the request's body framing (a bad chunk): logged with the 400 it got,
 *    `parse_error:<code>`, not as a client abort.
 * A timeout with no request in flight (a head under way, or an idle connection) is the listener's
 * (connectionRefusals.ts): a head gets its 408, an idle connection is closed.
 */
import type { Duplex } from "node:stream"
import type { RequestContext } from "../domain/RequestContext.ts"

const cut = new WeakSet<object>()

/** Marks the socket, then closes it (what Node does without a 'timeout' listener). */
export const cutOnTimeout = (socket: Duplex): void => {
  cut.add(socket)
  socket.destroy()
}

export const wasCut = (socket: object | null | undefined): boolean => socket != null && cut.has(socket)

/** What a request whose body framing the parser refused was answered. */
export interface BodyRefusal {
  readonly status: number
  readonly outcome: string
  /** Bytes of the problem body sent. */
  readonly bytesOut: number
}

const refusedBodies = new WeakMap<object, BodyRefusal>()

/** The request in flight on `socket` was answered `refusal` (its body framing was refused). */
export const markBodyRefused = (socket: object, refusal: BodyRefusal): void => {
  refusedBodies.set(socket, refusal)
}

/**
 * For the access log of a request cut short: when its body framing was refused, the answer it got
 * (status, outcome, bytes out) goes in `ctx` and this is true.
 */
export const recordBodyRefusal = (socket: object | null | undefined, ctx: RequestContext): boolean => {
  const refusal = socket == null ? undefined : refusedBodies.get(socket)
  if (refusal === undefined) return false
  ctx.status = refusal.status
  ctx.outcome = refusal.outcome
  ctx.bytesOut = refusal.bytesOut
  return true
}
