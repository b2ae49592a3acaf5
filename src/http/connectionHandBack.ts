/**
 * A connection that Node's HTTP server let go of with its 'upgrade' event, handed back to the server
 * so its next request is read and answered like any other: the keep-alive connection of a declined
 * Upgrade (RFC 9112 §9.3), and an Upgrade offer Gatehouse does not tunnel, given to the server again
 * as a plain request (upgradeOffer.ts). The server attaches a new parser to it (its timeouts, the
 * connections it closes at shutdown), as to a new connection, but through node:http's own connection
 * listener (the one `https` attaches to 'secureConnection') rather than by emitting 'connection':
 * that event's other listeners (the IP ACL verdict, the connections gauge) have seen this connection
 * already.
 */
import * as Effect from "effect/Effect"
import type { Server, ServerResponse } from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import { responseInFlight } from "./connectionState.ts"
import { eventOrClose } from "./eventOrClose.ts"

type ConnectionListener = (this: Server, socket: Duplex) => void

const EMPTY = Buffer.alloc(0)

const serverOf = (socket: Duplex): Server | undefined => {
  const server = (socket as { server?: Server }).server
  return server !== undefined && server.listening && !socket.destroyed ? server : undefined
}

/**
 * Gives the connection to its server now, `pending` read first (what Node's parser had read past the
 * upgrade request's head, a rebuilt head in front of it). False when it cannot go back (its server has
 * stopped listening: draining); the caller closes it.
 */
export const handBack = (socket: Duplex, pending: Buffer): boolean => {
  const server = serverOf(socket)
  const listener = (process.getBuiltinModule("node:http") as { _connectionListener?: ConnectionListener })._connectionListener
  if (server === undefined || typeof listener !== "function") return false
  if (pending.length > 0) socket.unshift(pending)
  listener.call(server, socket)
  return true
}

/** The connections of a server that wait in `awaitNextRequest` (few: declined upgrades only), kept on the server. */
const AWAITING = Symbol("gatehouse.awaitingNextRequest")

const awaitingOf = (server: Server): Set<Duplex> => {
  const holder = server as unknown as { [AWAITING]?: Set<Duplex> }
  return holder[AWAITING] ??= new Set()
}

/** Graceful shutdown: closes the connections waiting for a next request, as `closeIdleConnections` closes the server's own idle ones. */
export const closeAwaiting = (server: Server): void => {
  for (const socket of awaitingOf(server)) (socket as Socket).destroySoon()
}

/**
 * Keep-alive after a response written on the connection while it was not the server's (a declined
 * upgrade): it waits for the client's next request as an idle kept-alive connection does, closed
 * quietly after the server's `keepAliveTimeout` (`timeouts.idle`), and goes to the server when the
 * client's next bytes come, so that request's head is timed from its start (`timeouts.read`). Handed
 * over at once, it would count for Node's server as a new connection that has sent nothing yet, and be
 * cut after `timeouts.read` (its head timeout). While it waits it is not among the server's connections:
 * it is kept in the server's set of waiting connections instead, which a graceful shutdown closes
 * with the idle ones (`closeAwaiting`). False when it cannot go back; the caller closes it.
 */
export const awaitNextRequest = (socket: Duplex, pending: Buffer): boolean => {
  const server = serverOf(socket)
  if (server === undefined) return false
  if (pending.length > 0 || socket.readableLength > 0 || socket.readableEnded) return handBack(socket, pending)
  let timer: ReturnType<typeof setTimeout> | undefined
  const waiting = awaitingOf(server)
  const settle = () => {
    waiting.delete(socket)
    socket.off("readable", next)
    socket.off("close", settle)
    if (timer !== undefined) clearTimeout(timer)
  }
  // (the bytes stay in the socket's buffer: 'readable' only says they are there)
  const next = () => {
    settle()
    if (!handBack(socket, EMPTY)) (socket as Socket).destroySoon()
  }
  socket.on("readable", next)
  socket.once("close", settle)
  waiting.add(socket)
  if (server.keepAliveTimeout > 0) {
    timer = setTimeout(() => {
      settle()
      ;(socket as Socket).destroySoon()
    }, server.keepAliveTimeout)
  }
  return true
}

/**
 * Responses to requests pipelined before the upgrade (or CONNECT) request may still be going out on
 * the connection (it is their ServerResponse's until then): anything for the upgrade request follows
 * them (RFC 9112 §9.3.2), and the server's next parser must not find it there. When one finishes,
 * Node gives the connection to the next one queued behind it, so this waits until none holds it.
 */
export const previousResponseDone = (socket: Duplex): Effect.Effect<void> => {
  const previous = responseInFlight(socket)
  if (previous === undefined) return Effect.void
  return Effect.andThen(responseSettled(previous), Effect.suspend(() => {
    const next = responseInFlight(socket)
    return next === undefined || next === previous ? Effect.void : previousResponseDone(socket)
  }))
}

/** Succeeds once a response was wholly handed to its connection ('finish') or the connection closed. */
export const responseSettled = (res: ServerResponse): Effect.Effect<void> => {
  return res.writableFinished || res.destroyed ? Effect.void : eventOrClose(res, "finish")
}
