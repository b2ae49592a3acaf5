/**
 * How a tunnel (CONNECT or Upgrade) ended, written into its context: the outcome (error tag,
 * `upstream_<reason>`, `interrupted`, `defect`, `idle_timeout`), a JSON problem on the raw socket when
 * it failed before it opened (the status from errorResponse.ts), and the client socket destroyed
 * once it had opened or can no longer be written. Returns the typed error, if any.
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import type { Duplex } from "node:stream"
import type { RequestError } from "../domain/errors.ts"
import type { RequestContext } from "../domain/RequestContext.ts"
import { problemBody, problemBytes, problemFor } from "./errorResponse.ts"

export const settleTunnel = (
  exit: Exit.Exit<void, RequestError>,
  ctx: RequestContext,
  client: Duplex,
  opened: boolean,
  idled: boolean
): RequestError | undefined => {
  let error: RequestError | undefined
  if (Exit.isFailure(exit)) {
    const found = Cause.findErrorOption(exit.cause)
    if (found._tag === "Some") {
      error = found.value
      ctx.outcome = error._tag === "UpstreamError" ? `upstream_${error.reason}` : error._tag
      if (!opened) {
        const p = problemFor(error)
        ctx.status = p.status
        if (client.writable) {
          client.end(problemBytes(p))
          ctx.bytesOut = Buffer.byteLength(problemBody(p))
        }
      }
    } else ctx.outcome = Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "defect"
    if (opened || !client.writable) client.destroy()
  }
  if (idled) ctx.outcome = "idle_timeout"
  return error
}
