/**
 * Connections the server's own inactivity timeout cut (`server.timeout`, the larger of
 * `timeouts.read` and `timeouts.write`), kept so the access log can tell them from clients that
 * left: a request whose body stopped arriving is logged 408 `read_timeout` (nginx's
 * client_body_timeout), one whose client stopped reading the response `write_timeout`.
 */
import type { Duplex } from "node:stream"

const cut = new WeakSet<object>()

/** The server's 'timeout' listener: marks the socket, then closes it (what Node does without one). */
export const cutOnTimeout = (socket: Duplex): void => {
  cut.add(socket)
  socket.destroy()
}

export const wasCut = (socket: object | null | undefined): boolean => socket != null && cut.has(socket)
