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
  return Effect.as(filter.request(fr), filter.responseGuard(fr))
}

/** The upstream phase's outcome, with a refusal by a response filter turned into Blocked (and logged). */
export const withVerdict = (guard: ResponseGuard | undefined) =>
<A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, E | Blocked> => {
  if (guard === undefined) return self
  const refused = Effect.suspend(() => {
    const b = guard.verdict()!
    return Effect.logWarning("response blocked").pipe(
      Effect.annotateLogs({ filter: b.filter, rule: b.rule, subject: b.subject }),
      Effect.andThen(Effect.fail(b))
    )
  })
  return self.pipe(
    Effect.catchIf(
      (e): e is E => guard.verdict() !== undefined && (e instanceof UpstreamError || e instanceof Blocked),
      () => refused
    ),
    Effect.flatMap((a) => (guard.verdict() === undefined ? Effect.succeed(a) : refused))
  )
}
