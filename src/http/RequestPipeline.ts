/**
 * The request pipeline: named phases in a fixed order, each continuing or answering early,
 * with every typed failure mapped to a status in one place (errorResponse.ts) and one access-log
 * line written on exit, whatever happened (success, early answer, failure, interruption).
 *
 *   validate → control → maxForwards → route → upstream → (response written natively) → accessLog
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type { IncomingMessage, ServerResponse } from "node:http"
import { randomBytes } from "node:crypto"
import type { RequestError } from "../domain/errors.ts"
import { newRequestContext, type RequestContext } from "../domain/RequestContext.ts"
import { hostnameOf } from "../domain/requestTarget.ts"
import { AccessLog, accessEntry } from "../services/AccessLog.ts"
import { Config } from "../services/Config.ts"
import { Lifecycle } from "../services/Lifecycle.ts"
import { Compression } from "../services/Compression.ts"
import { Metrics } from "../services/Metrics.ts"
import { Tracing, type UpstreamLink } from "../services/Tracing.ts"
import { Filter } from "../services/Filter.ts"
import { Router } from "../services/Router.ts"
import { type ResponseSink, Upstream } from "../services/Upstream.ts"
import { CliRunner } from "../services/CliRunner.ts"
import { isCliPath, makeCliExecute } from "./cliExecute.ts"
import { composeSinks } from "./composeSinks.ts"
import { controlAnswer, writeControl } from "./controlEndpoints.ts"
import { isMetricsRequest, mainPortMetrics } from "./metricsEndpoint.ts"
import { problemFor, writeProblem } from "./errorResponse.ts"
import { filterPhase, withVerdict } from "./phases/filter.ts"
import { answerAsFinalRecipient, maxForwards } from "./phases/maxForwards.ts"
import { route, type SelfCheck } from "./phases/route.ts"
import { pinDestination } from "./phases/destination.ts"
import { isAdminPath, makeAdminAuth } from "./adminAuth.ts"
import { adminAnswer } from "./adminEndpoints.ts"
import { makeSecurityHeaders } from "./securityHeaders.ts"
import { DestinationGuard } from "../services/DestinationGuard.ts"
import { ProxyAuth } from "../services/ProxyAuth.ts"
import { RateLimiter } from "../services/RateLimiter.ts"
import { Cache } from "../services/Cache.ts"
import { normalizedAcceptEncoding } from "../domain/contentEncoding.ts"
import { cliOutcome } from "../domain/metricLabels.ts"
import { makeCacheAdmin } from "./cacheAdmin.ts"
import { makeCacheLookup } from "./phases/cacheLookup.ts"
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
  /** Whether an absolute-form target names this listener (served locally, never looped). */
  readonly isSelf: SelfCheck
}>()("gatehouse/RequestPipeline") {
  static readonly layer = Layer.effect(
    RequestPipeline,
    Effect.gen(function*() {
      const config = yield* Config
      const router = yield* Router
      const upstream = yield* Upstream
      const accessLog = yield* AccessLog
      const lifecycle = yield* Lifecycle
      const metrics = yield* Metrics
      const tracing = yield* Tracing
      const compression = yield* Compression
      const serveMetrics = mainPortMetrics(metrics, config.metrics.on_main_port)
      metrics.observePools(upstream.poolStats)
      // Chosen once here: no per-request work for what is switched off.
      const compress = compression.enabled
        ? (req: IncomingMessage, res: ServerResponse, link: UpstreamLink) => compression.begin(req, res, link.span)
        : () => undefined
      const clock = yield* Clock.Clock
      const timeUpstream = metrics.enabled
        ? <A, E, R>(ctx: RequestContext, effect: Effect.Effect<A, E, R>) =>
          Effect.suspend(() => {
            const t0 = clock.currentTimeNanosUnsafe()
            return Effect.onExit(effect, () => Effect.sync(() => { ctx.upstreamNs = clock.currentTimeNanosUnsafe() - t0 }))
          })
        : <A, E, R>(_ctx: RequestContext, effect: Effect.Effect<A, E, R>) => effect
      const filter = yield* Filter
      const proxyAuth = yield* ProxyAuth
      const rateLimiter = yield* RateLimiter
      const destinations = yield* DestinationGuard
      const adminAuth = makeAdminAuth(config.security.admin_token)
      const securityHeaders = makeSecurityHeaders(config.security.headers)
      const bootMs = yield* Clock.currentTimeMillis
      const cliRunner = yield* CliRunner
      const cliExecute = makeCliExecute(cliRunner)
      metrics.observeCliRunning(() => Effect.runSync(cliRunner.stats).running)
      const cache = yield* Cache
      metrics.observeCache(() => Effect.runPromise(cache.stats))
      const cacheAdmin = makeCacheAdmin(cache)
      const cacheLookup = makeCacheLookup({
        cache,
        via: VIA,
        now: () => clock.currentTimeMillisUnsafe(),
        // one stored variant per coding the compressor would pick (Compression.ts)
        normalisers: compression.enabled ? { "accept-encoding": (v) => normalizedAcceptEncoding(v, compression.offered) } : {}
      })
      const { server } = config
      const bootId = randomBytes(4).toString("hex")
      let counter = 0
      const requestId = (incoming: string | undefined) =>
        incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : `${bootId}-${(++counter).toString(36)}`
      const listenHost = server.host.toLowerCase()
      const isSelf: SelfCheck = (hostname, port) =>
        (port === server.port || destinations.listenPorts.has(port)) && (hostname === listenHost || (LOOPBACK.has(hostname) && LOOPBACK.has(listenHost)))

      const phases = Effect.fnUntraced(function*(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, expectContinue: boolean) {
        // phase: acl (security.access_control, judged at accept: a denied client gets 403 + close)
        yield* filter.connection(req.socket, ctx.clientIp)
        // phase: validate
        const head = yield* validate(req, server)
        const t = head.target
        ctx.kind = t.form === "absolute" ? "forward" : "reverse"
        // phase: control (endpoints answered by the proxy itself, never routed)
        if (t.form === "origin" || (t.form === "absolute" && isSelf(t.hostname, t.port))) {
          if (isCliPath(t.path)) return yield* cliExecute(req, res, ctx, expectContinue)
          if (serveMetrics !== undefined && isMetricsRequest(ctx.method, t.path)) {
            ctx.kind = "control"
            ctx.status = 200
            return serveMetrics(req, res)
          }
          if (isAdminPath(t.path)) {
            yield* adminAuth(req.headers.authorization, ctx.clientIp)
            const admin = adminAnswer(ctx.method, t.path, config, lifecycle.state(), (yield* Clock.currentTimeMillis) - bootMs) ??
              (yield* cacheAdmin(ctx.method, t.path))
            if (admin !== undefined) {
              ctx.kind = "control"
              writeControl(res, admin, ctx.method)
              ctx.status = admin.status
              return
            }
          }
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
        // phase: filter (issue 4: domain / IP / SSRF → 403)
        const guard = yield* tracing.phase(ctx, "filter", filterPhase(filter, req, head, ctx, isSelf))
        // phase: rateLimit (issue 4: → 429; allowed responses carry RateLimit-Policy / RateLimit)
        const xff = req.headers["x-forwarded-for"]
        const limit = yield* rateLimiter.admit(ctx.clientIp, Array.isArray(xff) ? xff.join(", ") : xff)
        if (limit !== undefined) {
          res.setHeader("ratelimit-policy", limit.policy)
          res.setHeader("ratelimit", limit.state)
        }
        // phase: auth (issue 4: proxy auth → 407, forward-proxy requests only; after rateLimit so
        // failed attempts spend the client's budget: no unbounded credential guessing or hashing)
        if (proxyAuth.enabled && t.form === "absolute" && !isSelf(t.hostname, t.port)) {
          yield* proxyAuth.check(req.headers["proxy-authorization"])
        }
        // phase: cacheLookup (a fresh hit answers here; miss/stale continue with a storing sink, phases/cacheLookup.ts)
        const cached = yield* cacheLookup(req, res, head, ctx)
        if (cached.answered) return
        // phase: route
        // (forward proxy: the SSRF guard pins the checked address of the target, phases/destination.ts)
        const routed = yield* Effect.flatMap(route(head, req.headers.host ?? "", router, isSelf), (r) => pinDestination(destinations, head, r))
        ctx.kind = routed.kind
        ctx.upstream = routed.backend.origin
        // phase: upstream (response filters wrap the ResponseSink: security headers, compression,
        // content inspection, cache store — issue 4/5 add them to `wrapSink`)
        const target = { method: ctx.method, origin: routed.backend.origin, path: routed.path }
        const result = yield* tracing.upstream(ctx, target, (link) => {
          const compressed = compress(req, res, link)
          return timeUpstream(ctx, forwardUpstream(upstream, req, res, head, routed, ctx, {
            // response filters, in the order the upstream's bytes meet them (composeSinks.ts);
            // a cache store placed after `compress` keeps the encoded variant (Compression.ts)
            wrapSink: composeSinks([guard?.wrap, compressed?.wrap, securityHeaders(routed.backend.rule, (req.socket as { encrypted?: boolean }).encrypted === true), cached.wrap]),
            rawHeaders: cached.rawHeaders,
            via: VIA,
            maxBodyBytes: server.limits.max_body_bytes,
            maxForwards: mf.forward,
            expectContinue,
            traceparent: link.traceparent
          }).pipe(Effect.tap(() => compressed === undefined ? Effect.void : compressed.finished)))
        }).pipe(withVerdict(guard), cached.complete)
        ctx.status = result.status
        ctx.bytesOut = result.bytes
      })

      /** Metrics and the access-log line, for every outcome. */
      const record = (ctx: RequestContext): Effect.Effect<void> => {
        const end = clock.currentTimeNanosUnsafe()
        metrics.request(ctx, end - ctx.startNs)
        if (ctx.cli !== undefined && ctx.cli.pid > 0) metrics.cliFinished(cliOutcome(ctx.cli))
        return accessLog.write(accessEntry(ctx, end - ctx.startNs))
      }

      /** The one place a failure becomes an answer (errorResponse.ts), then `record`. */
      const finish = (ctx: RequestContext, res: ServerResponse, exit: Exit.Exit<void, RequestError>): Effect.Effect<void> => {
        if (Exit.isSuccess(exit)) return record(ctx)
        const error = Cause.findErrorOption(exit.cause)
        if (error._tag === "Some") {
          const e = error.value
          ctx.outcome = e._tag === "UpstreamError" ? `upstream_${e.reason}` : e._tag
          metrics.refused(e)
          if (e._tag === "ClientAborted") {
            res.destroy()
            ctx.status = 499
          } else writeProblem(res, problemFor(e), ctx)
          return record(ctx)
        }
        if (Cause.hasInterruptsOnly(exit.cause)) {
          ctx.outcome = "client_abort"
          ctx.status = ctx.status || 499
          return record(ctx)
        }
        ctx.outcome = "defect"
        return Effect.logError("request defect", Cause.pretty(exit.cause)).pipe(
          Effect.andThen(Effect.sync(() => writeProblem(res, { status: 500, error: "internal", detail: "internal error" }, ctx))),
          Effect.andThen(Effect.suspend(() => record(ctx)))
        )
      }

      return RequestPipeline.of({
        requestId,
        isSelf,
        handle: (req, res, expectContinue) =>
          Effect.suspend(() => {
            const start = clock.currentTimeNanosUnsafe()
            const rid = req.headers["x-request-id"]
            const ctx = newRequestContext(
              requestId(typeof rid === "string" ? rid : undefined),
              start,
              normaliseIp(req.socket.remoteAddress),
              req.method ?? "GET",
              req.url ?? ""
            )
            return tracing.request(req, ctx, phases(req, res, ctx, expectContinue).pipe(
              Effect.onExit((exit) => finish(ctx, res, exit)),
              Effect.catchCause(() => Effect.void)
            ))
          })
      })
    })
  )
}

/** "::ffff:10.0.0.1" → "10.0.0.1". */
export const normaliseIp = (ip: string | undefined): string =>
  ip === undefined ? "" : ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip

export { hostnameOf }
