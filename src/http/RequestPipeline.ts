/**
 * The request pipeline: named phases in a fixed order, each continuing or answering early,
 * with every typed failure mapped to a status in one place (errorResponse.ts) and one access-log
 * line written on exit, whatever happened (success, early answer, failure, interruption).
 *
 *   validate → control → maxForwards → route → upstream → (response written natively) → accessLog
 */
import { Cause, Clock, Context, Effect, Exit, Layer } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { randomBytes } from "node:crypto"
import type { RequestError } from "../domain/errors.ts"
import { newRequestContext, type RequestContext } from "../domain/RequestContext.ts"
import { hostnameOf } from "../domain/requestTarget.ts"
import { AccessLog } from "../services/AccessLog.ts"
import { Config } from "../services/Config.ts"
import { Lifecycle } from "../services/Lifecycle.ts"
import { Router } from "../services/Router.ts"
import { type ResponseSink, Upstream } from "../services/Upstream.ts"
import { controlAnswer, writeControl } from "./controlEndpoints.ts"
import { problemFor, writeProblem } from "./errorResponse.ts"
import { answerAsFinalRecipient, maxForwards } from "./phases/maxForwards.ts"
import { route, type SelfCheck } from "./phases/route.ts"
import { forwardUpstream } from "./phases/upstream.ts"
import { validate } from "./phases/validate.ts"

export const VIA = "1.1 gatehouse"
const identitySink = (sink: ResponseSink): ResponseSink => sink
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "0.0.0.0", "::"])

export class RequestPipeline extends Context.Service<RequestPipeline, {
  /** Runs one request to its end. Never fails: every outcome is answered and logged. */
  handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Effect.Effect<void>
  /** Makes a request id: the client's X-Request-Id when well-formed, else a new one. */
  readonly requestId: (incoming: string | undefined) => string
}>()("gatehouse/RequestPipeline") {
  static readonly layer = Layer.effect(
    RequestPipeline,
    Effect.gen(function*() {
      const config = yield* Config
      const router = yield* Router
      const upstream = yield* Upstream
      const accessLog = yield* AccessLog
      const lifecycle = yield* Lifecycle
      const { server } = config
      const bootId = randomBytes(4).toString("hex")
      let counter = 0
      const requestId = (incoming: string | undefined) =>
        incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : `${bootId}-${(++counter).toString(36)}`
      const listenHost = server.host.toLowerCase()
      const isSelf: SelfCheck = (hostname, port) =>
        port === server.port && (hostname === listenHost || (LOOPBACK.has(hostname) && LOOPBACK.has(listenHost)))

      const phases = Effect.fnUntraced(function*(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, expectContinue: boolean) {
        // phase: validate
        const head = yield* validate(req, server)
        const t = head.target
        // phase: control (endpoints answered by the proxy itself, never routed)
        if (t.form === "origin") {
          const answer = controlAnswer(ctx.method, t.path, lifecycle.state())
          if (answer !== undefined) {
            ctx.kind = "control"
            writeControl(res, answer, ctx.method)
            ctx.status = answer.status
            return
          }
        }
        // phase: maxForwards
        const mf = maxForwards(req)
        if (mf.answer) {
          ctx.kind = "control"
          ctx.status = answerAsFinalRecipient(req, res, VIA)
          return
        }
        // phase: auth (issue 4: proxy auth → 407)
        // phase: filter (issue 4: domain / IP / SSRF → 403)
        // phase: rateLimit (issue 4: → 429)
        // phase: cacheLookup (issue 5: hit answers here)
        // phase: route
        const routed = yield* route(head, req.headers.host ?? "", router, isSelf)
        ctx.kind = routed.kind
        ctx.upstream = routed.backend.origin
        // phase: upstream (response filters wrap the ResponseSink: security headers, compression,
        // content inspection, cache store — issue 4/5 add them to `wrapSink`)
        const result = yield* forwardUpstream(upstream, req, res, head, routed, ctx, {
          wrapSink: identitySink,
          via: VIA,
          maxBodyBytes: server.limits.max_body_bytes,
          maxForwards: mf.forward,
          expectContinue
        })
        ctx.status = result.status
        ctx.bytesOut = result.bytes
      })

      const finish = (ctx: RequestContext, res: ServerResponse, exit: Exit.Exit<void, RequestError>) =>
        Effect.gen(function*() {
          if (Exit.isFailure(exit)) {
            const error = Cause.findErrorOption(exit.cause)
            if (error._tag === "Some") {
              const e = error.value
              ctx.outcome = e._tag === "UpstreamError" ? `upstream_${e.reason}` : e._tag
              if (e._tag === "ClientAborted") {
                res.destroy()
                ctx.status = 499
              } else ctx.status = writeProblem(res, problemFor(e), ctx.id)
            } else if (Cause.hasInterruptsOnly(exit.cause)) {
              ctx.outcome = "client_abort"
              ctx.status = ctx.status || 499
            } else {
              ctx.outcome = "defect"
              yield* Effect.logError("request defect", Cause.pretty(exit.cause))
              ctx.status = writeProblem(res, { status: 500, error: "internal", detail: "internal error" }, ctx.id)
            }
          }
          const end = yield* Clock.currentTimeNanos
          yield* accessLog.write({
            request_id: ctx.id,
            client_ip: ctx.clientIp,
            method: ctx.method,
            url: ctx.url,
            status: ctx.status,
            bytes_in: ctx.bytesIn,
            bytes_out: ctx.bytesOut,
            duration_ms: Number(end - ctx.startNs) / 1e6,
            upstream: ctx.upstream,
            outcome: ctx.outcome,
            kind: ctx.kind
          })
        })

      return RequestPipeline.of({
        requestId,
        handle: (req, res, expectContinue) =>
          Effect.flatMap(Clock.currentTimeNanos, (start) => {
            const rid = req.headers["x-request-id"]
            const ctx = newRequestContext(
              requestId(typeof rid === "string" ? rid : undefined),
              start,
              normaliseIp(req.socket.remoteAddress),
              req.method ?? "GET",
              req.url ?? ""
            )
            return phases(req, res, ctx, expectContinue).pipe(
              Effect.onExit((exit) => finish(ctx, res, exit)),
              Effect.catchCause(() => Effect.void)
            )
          })
      })
    })
  )
}

/** "::ffff:10.0.0.1" → "10.0.0.1". */
export const normaliseIp = (ip: string | undefined): string =>
  ip === undefined ? "" : ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip

export { hostnameOf }
