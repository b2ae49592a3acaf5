/**
 * Phase: filter. Before routing, the request filters judge the host the request is for (forward:
 * the absolute-form target; reverse: the Host header) and hand back the response guard the
 * upstream phase wraps around its ResponseSink. After the exchange, a refusal recorded by the
 * guard becomes the request's failure (403, or a cut connection once the head was sent).
 */
import * as Effect from "effect/Effect"
import type { IncomingMessage } from "node:http"
import { Blocked, UpstreamError } from "../../domain/errors.ts"
import type { RequestContext } from "../../domain/RequestContext.ts"
import { hostnameOf } from "../../domain/requestTarget.ts"
import { type Filter, filterRequest, type ResponseGuard } from "../../services/Filter.ts"
import type { SelfCheck } from "./route.ts"
import type { RequestHead } from "./validate.ts"

export const filterPhase = (
  filter: Filter["Service"],
  req: IncomingMessage,
  head: RequestHead,
  ctx: RequestContext,
  isSelf: SelfCheck
): Effect.Effect<ResponseGuard | undefined, Blocked> => {
  const t = head.target
  const fr = t.form === "absolute" && !isSelf(t.hostname, t.port)
    ? filterRequest("forward", t.hostname, t.port, ctx.clientIp, ctx.method)
    : filterRequest("reverse", t.form === "absolute" ? t.hostname : hostnameOf(req.headers.host ?? ""), undefined, ctx.clientIp, ctx.method)
  const blocked = filter.requestVerdict(fr)
  return blocked === undefined ? Effect.succeed(filter.responseGuard(fr)) : Effect.fail(blocked)
}

/**
 * After the exchange: the response guard's refusal, when it applies to this outcome (a success, or
 * an upstream failure the guard caused by cutting the response); `undefined` otherwise.
 */
export const refusalFor = (guard: ResponseGuard | undefined, failure?: unknown): Blocked | undefined => {
  if (guard === undefined) return undefined
  const b = guard.verdict()
  if (b === undefined) return undefined
  return failure === undefined || failure instanceof UpstreamError || failure instanceof Blocked ? b : undefined
}

/** The log line of a refused response. */
export const logRefusal = (b: Blocked): Effect.Effect<void> =>
  Effect.logWarning("response blocked").pipe(Effect.annotateLogs({ filter: b.filter, rule: b.rule, subject: b.subject }))

/** The upstream phase's outcome, with a refusal by a response filter turned into Blocked (and logged). */
export const withVerdict = (guard: ResponseGuard | undefined) =>
<A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, E | Blocked> => {
  if (guard === undefined) return self
  const refused = (b: Blocked) => Effect.andThen(logRefusal(b), Effect.fail(b))
  return self.pipe(
    Effect.catch((e): Effect.Effect<A, E | Blocked> => {
      const b = refusalFor(guard, e)
      return b === undefined ? Effect.fail(e) : refused(b)
    }),
    Effect.flatMap((a): Effect.Effect<A, Blocked> => {
      const b = refusalFor(guard)
      return b === undefined ? Effect.succeed(a) : refused(b)
    })
  )
}
