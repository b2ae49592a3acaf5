/**
 * The client's side of an upgrade exchange until the origin switches: its interim (1xx) responses,
 * and its final answer when it declines the upgrade (RFC 9110 §7.8: a server may ignore Upgrade and
 * answer as it would without it), relayed like any forwarded response, body included.
 *
 * The connection left Node's HTTP server at the 'upgrade' event, so the answer is written through a
 * ServerResponse of its own on it: the framing (Content-Length or chunked, HEAD, 204/304), Date and
 * Connection are Node's, as for every response the proxy sends, and ClientSink writes it, behind the
 * same response guard and hardening headers as a forwarded response. Afterwards the connection goes
 * back to the HTTP server for the client's next request (connectionHandBack.ts), or is closed when the
 * client said `Connection: close` or the server is draining (RFC 9112 §9.3). Draining is read when the
 * answer's head goes out, not when the upgrade arrived: an answer that comes once the shutdown has
 * begun says `Connection: close` (RFC 9112 §9.6), as the pipeline's responses do.
 */
import * as Effect from "effect/Effect"
import { type IncomingMessage, type Server, ServerResponse } from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import type { HeaderMap } from "../domain/hopHeaders.ts"
import type { InterimSink } from "../services/Upstream.ts"
import { awaitNextRequest, responseSettled } from "./connectionHandBack.ts"
import { responseInFlight } from "./connectionState.ts"
import { ClientSink } from "./phases/upstream.ts"

/**
 * The server no longer accepts connections: it is draining (the Listener closes it as the shutdown
 * begins, connectionHandBack.ts reads the same).
 */
const draining = (socket: Duplex | null): boolean => (socket as { server?: Server } | null)?.server?.listening !== true

/** ClientSink for the answer: whether its connection is kept is settled when its head is written. */
class AnswerSink extends ClientSink {
  override head(status: number, statusText: string | undefined, headers: HeaderMap): void {
    if (this.res.shouldKeepAlive && draining(this.res.socket)) this.res.shouldKeepAlive = false
    super.head(status, statusText, headers)
  }
}

/** The client's Connection field lists `close`. */
const asksClose = (connection: string | undefined): boolean => {
  if (connection === undefined) return false
  for (const t of connection.split(",")) if (t.trim().toLowerCase() === "close") return true
  return false
}

export class UpgradeAnswer implements InterimSink {
  readonly res: ServerResponse
  readonly sink: ClientSink
  readonly socket: Socket
  /**
   * A response's 'drain' is the server's to emit (from its connection's 'drain'), and the server no
   * longer listens to this connection: without this, ClientSink would wait for it for ever.
   */
  readonly drained: () => void
  constructor(req: IncomingMessage, socket: Duplex, via: string, relayed: (bytes: number) => void) {
    const res = new ServerResponse(req)
    // (only HTTP/1.1 requests get here: an HTTP/1.0 one goes on as a plain request, upgradeOffer.ts)
    res.shouldKeepAlive = !asksClose(req.headers.connection)
    res.assignSocket(socket as Socket)
    this.res = res
    this.socket = socket as Socket
    this.sink = new AnswerSink(res, via, relayed)
    this.drained = () => {
      if (res.writableNeedDrain) res.emit("drain")
    }
    socket.on("drain", this.drained)
  }

  interim(status: number, headers: HeaderMap): void {
    this.sink.interim(status, headers)
  }

  /** Something of the answer reached the client: a failure can then only cut the connection. */
  started(): boolean {
    return this.res.headersSent
  }

  /** The origin switched protocols: the connection is the tunnel's from here. */
  release(): void {
    this.socket.off("drain", this.drained)
    if (responseInFlight(this.socket) === this.res) this.res.detachSocket(this.socket)
  }

  /** The whole answer was handed to the connection (or the connection closed). */
  get finished(): Effect.Effect<void> {
    return responseSettled(this.res)
  }

  /**
   * After the answer: the connection is kept for the client's next request, which the HTTP server
   * reads (`pending`, what Node read past the upgrade request, first), or it is closed. True when kept.
   */
  reuse(pending: Buffer): boolean {
    this.release()
    if (this.res.shouldKeepAlive && awaitNextRequest(this.socket, pending)) return true
    this.socket.destroySoon()
    return false
  }
}

