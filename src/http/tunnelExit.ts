/**
 * How a tunnel (CONNECT or Upgrade) ended, written into its context: the outcome (error tag,
 * `upstream_<reason>`, `client_abort`, `interrupted`, `defect`, `idle_timeout`), a JSON problem on the
 * raw socket when it failed before it opened (the status from errorResponse.ts), and the client socket
 * destroyed once it had opened or can no longer be written. Returns the typed error, if any.
 *
 * A client that left (its connection reset or dropped: the bridge's `ClientAborted`, or the fiber
 * interrupted by its connection's close) is logged as the pipeline logs one: `client_abort`, with
 * status 499 if nothing was sent yet, else the status sent (README, Logs). Interrupted otherwise
 * (the shutdown cutting it after `shutdown_grace`), it is `interrupted`.
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import type { Duplex } from "node:stream"
import type { RequestError } from "../domain/errors.ts"
import type { RequestContext } from "../domain/RequestContext.ts"
import { problemBody, problemBytes, problemFor } from "./errorResponse.ts"

/**
 * The client left: `ended` (it ended its side where that means leaving: an Upgrade before the switch),
 * or its connection failed (a reset, a write into a connection it closed). A connection the proxy
 * destroyed itself (shutdown, idle timeout, the other side's failure) carries no error.
 */
const clientLeft = (client: Duplex, ended: boolean): boolean => ended || client.errored != null

const clientAbort = (ctx: RequestContext, opened: boolean): void => {
  ctx.outcome = "client_abort"
  if (!opened) ctx.status = 499
}

export const settleTunnel = (
  exit: Exit.Exit<void, RequestError>,
  ctx: RequestContext,
  client: Duplex,
  opened: boolean,
  idled: boolean,
  ended = false
): RequestError | undefined => {
  let error: RequestError | undefined
  if (Exit.isFailure(exit)) {
    const found = Cause.findErrorOption(exit.cause)
    if (found._tag === "Some") {
      error = found.value
      if (error._tag === "ClientAborted") clientAbort(ctx, opened)
      else {
        ctx.outcome = error._tag === "UpstreamError" ? `upstream_${error.reason}` : error._tag
        if (!opened) {
          const p = problemFor(error)
          ctx.status = p.status
          if (client.writable) {
            client.end(problemBytes(p))
            ctx.bytesOut = Buffer.byteLength(problemBody(p))
          }
        }
      }
    } else if (!Cause.hasInterruptsOnly(exit.cause)) ctx.outcome = "defect"
    else if (clientLeft(client, ended)) clientAbort(ctx, opened)
    else ctx.outcome = "interrupted"
    if (opened || !client.writable) client.destroy()
  }
  if (idled) ctx.outcome = "idle_timeout"
  return error
}

/** A client connection's byte counters (Node's): what it read and wrote so far, queued writes included. */
export const bytesRead = (client: Duplex): number => (client as { bytesRead?: number }).bytesRead ?? 0
export const bytesWritten = (client: Duplex): number => (client as { bytesWritten?: number }).bytesWritten ?? 0

/**
 * A tunnel's bytes, its payload each way (README, Logs): what the client connection read since
 * `readFrom` and wrote since `writtenFrom`, its counters where the payload began (so the requests
 * and responses before it on the connection, and the tunnel's own request head and 200/101, are not
 * counted).
 */
export const recordTunnelBytes = (ctx: RequestContext, client: Duplex, readFrom: number, writtenFrom: number): void => {
  ctx.bytesIn = Math.max(0, bytesRead(client) - readFrom)
  ctx.bytesOut = Math.max(0, bytesWritten(client) - writtenFrom)
}
