/**
 * The request pipeline: named phases in a fixed order, each continuing or answering early,
 * with every typed failure mapped to a status in one place (errorResponse.ts) and one access-log
 * line written at the end, whatever happened (success, early answer, failure, interruption).
 *
 *   decide:   acl → validate → control → maxForwards → filter → rateLimit → auth → cacheLookup
 *             → route → destination          (one Effect; synchronous unless a phase waits)
 *             (/cli/execute and /admin/* pass rateLimit before their token check; a Max-Forwards: 0
 *             OPTIONS/TRACE is answered after auth, in place of cacheLookup)
 *   exchange: upstream → (response written natively)   (native relay, or an Effect with after-steps)
 *   finish:   error → status, metrics, access log       (exactly once)
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type { IncomingMessage, ServerResponse } from "node:http"
import { randomBytes } from "node:crypto"
import type { RequestError } from "../domain/errors.ts"
import { newRequestContext, type RequestContext } from "../domain/RequestContext.ts"
import { hostnameOf } from "../domain/requestTarget.ts"
import { responseInFlight } from "./connectionState.ts"
import { AccessLog, accessEntry } from "../services/AccessLog.ts"
import { Config } from "../services/Config.ts"
import { Lifecycle } from "../services/Lifecycle.ts"
import { Reclaimer } from "../services/Reclaimer.ts"
import { Compression } from "../services/Compression.ts"
import { Metrics } from "../services/Metrics.ts"
import { Tracing, type UpstreamLink } from "../services/Tracing.ts"
import { Filter } from "../services/Filter.ts"
import { Router } from "../services/Router.ts"
import { type Aborter, type ForwardResult, type ResponseSink, Upstream } from "../services/Upstream.ts"
import { CliRunner } from "../services/CliRunner.ts"
import { isCliPath, makeCliExecute } from "./cliExecute.ts"
import { composeSinks } from "./composeSinks.ts"
import { thenNow } from "./decidedNow.ts"
import { type ControlAnswer, controlAnswer, writeControl } from "./controlEndpoints.ts"
import { isMetricsRequest, metricsAnswer } from "./metricsEndpoint.ts"
import { problemFor, writeProblem } from "./errorResponse.ts"
import { recordBodyRefusal, wasCut } from "./socketTimeouts.ts"
import { filterPhase, logRefusal, refusalFor, withVerdict } from "./phases/filter.ts"
import { answerAsFinalRecipient, maxForwards } from "./phases/maxForwards.ts"
import { route, type Routed, type SelfCheck } from "./phases/route.ts"
import { pinDestination } from "./phases/destination.ts"
import { isAdminPath, makeAdminAuth } from "./adminAuth.ts"
import { adminAnswer } from "./adminEndpoints.ts"
import { makeSecurityHeaders } from "./securityHeaders.ts"
import { DestinationGuard } from "../services/DestinationGuard.ts"
import { ProxyAuth } from "../services/ProxyAuth.ts"
import { RateLimiter, type RateLimitInfo } from "../services/RateLimiter.ts"
import { Cache } from "../services/Cache.ts"
import { normalizedAcceptEncoding } from "../domain/contentEncoding.ts"
import { cliOutcome } from "../domain/metricLabels.ts"
import { makeCacheAdmin } from "./cacheAdmin.ts"
import { type CachePlan, hasCompletion, makeCacheLookup } from "./phases/cacheLookup.ts"
import { forwardUpstream, prepareExchange, type PreparedExchange, type UpstreamPhaseOptions } from "./phases/upstream.ts"
import { type RequestHead, validate } from "./phases/validate.ts"
import { EndpointNotFound, UpstreamError } from "../domain/errors.ts"
import type { ResponseGuard } from "../services/Filter.ts"
import type { CompressedResponse } from "../services/Compression.ts"

export const VIA = "1.1 gatehouse"
const identitySink = (sink: ResponseSink): ResponseSink => sink
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "0.0.0.0", "::"])

export class RequestPipeline extends Context.Service<RequestPipeline, {
  /**
   * Takes one request to its end (from the server's 'request' event). Every outcome is answered
   * and logged; the client going away cancels what runs (a decision fiber or the upstream request).
   */
  handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void
  /** Succeeds once no request is in flight (graceful shutdown waits on it). */
  readonly idle: Effect.Effect<void>
  /** Requests in flight now. */
  readonly inFlight: () => number
  /**
   * Graceful shutdown begins: every later request's response says `Connection: close` and closes its
   * connection when done (RFC 9112 §9.6), instead of promising a keep-alive the draining listener
   * will not keep (the Listener marks the responses already in flight).
   */
  readonly drain: Effect.Effect<void>
  /** Makes a request id: the client's X-Request-Id when well-formed, else a new one. */
  readonly requestId: (incoming: string | undefined) => string
  /** Whether an absolute-form target names this listener (served locally, never looped). */
  readonly isSelf: SelfCheck
  /**
   * The server's inactivity timeout on a connection with a request in flight: true when the wait is
   * the upstream's, so the connection is not cut as the client's fault. A complete request whose
   * response has nothing queued for the client waits on the upstream's head or body (its own timers,
   * `timeouts.read`, answer 504); an upload the proxy stopped reading because the upstream stopped
   * taking it is answered 504 here (undici has no timer for that). False: the client's own stall.
   */
  readonly upstreamWait: (socket: object) => boolean
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
      const serveMetrics = metricsAnswer(metrics, config.metrics.on_main_port)
      metrics.observePools(upstream.poolStats)
      // Chosen once here: no per-request work for what is switched off.
      const compress = compression.enabled
        ? (req: IncomingMessage, res: ServerResponse, link: UpstreamLink) => compression.begin(req, res, link.span)
        : () => undefined
      const clock = yield* Clock.Clock
      const timeUpstream = metrics.enabled
        ? <A, E, R>(ctx: RequestContext, effect: Effect.Effect<A, E, R>) =>
          Effect.suspend(() => {
            const t0 = clock.monotonicTimeNanosUnsafe()
            return Effect.onExit(effect, () => Effect.sync(() => { ctx.upstreamNs = clock.monotonicTimeNanosUnsafe() - t0 }))
          })
        : <A, E, R>(_ctx: RequestContext, effect: Effect.Effect<A, E, R>) => effect
      const filter = yield* Filter
      const proxyAuth = yield* ProxyAuth
      const rateLimiter = yield* RateLimiter
      const destinations = yield* DestinationGuard
      const reclaimer = yield* Reclaimer
      metrics.observeReclaimer(reclaimer.stats)
      const adminAuth = makeAdminAuth(config.security.admin_token)
      const securityHeaders = makeSecurityHeaders(config.security.headers)
      const bootMs = yield* Clock.currentTimeMillis
      const cliRunner = yield* CliRunner
      const cliExecute = makeCliExecute(cliRunner, config.server.limits.max_body_bytes)
      metrics.observeCliRunning(() => Effect.runSync(cliRunner.stats).running)
      const cache = yield* Cache
      metrics.observeCache(() => Effect.runPromise(cache.stats))
      const cacheAdmin = makeCacheAdmin(cache)
      const cacheLookup = makeCacheLookup({
        cache,
        via: VIA,
        now: () => clock.currentTimeMillisUnsafe(),
        // one stored variant per coding the compressor would pick (Compression.ts)
        normalisers: compression.enabled ? { "accept-encoding": (v) => normalizedAcceptEncoding(v, compression.offered) } : {},
        // an absolute-form request naming this listener is keyed like the origin-form request it is served as
        isSelf: (hostname, port) => isSelf(hostname, port)
      })
      const { server } = config
      const bootId = randomBytes(4).toString("hex")
      let counter = 0
      const requestId = (incoming: string | undefined) =>
        incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : `${bootId}-${(++counter).toString(36)}`
      const listenHost = server.host.toLowerCase()
      const isSelf: SelfCheck = (hostname, port) =>
        (port === server.port || destinations.listenPorts.has(port)) && (hostname === listenHost || (LOOPBACK.has(hostname) && LOOPBACK.has(listenHost)))

      /**
       * The decision phases, in order: an early answer (`undefined`, ctx.status set), a typed failure,
       * or the forwarding plan. Each step runs its phase and hands the outcome to the next step with
       * `thenNow`: at once while phases decide synchronously (an Exit: no fiber, no closure, no
       * generator), as `Effect.flatMap` from the first phase that really waits. What the later phases
       * need is kept on the request's Run.
       */
      const decision = (run: Run): Decision => {
        const { req, ctx } = run
        // phase: acl (security.access_control, judged at accept: a denied client gets 403 + close)
        const denied = filter.connectionVerdict(req.socket, ctx.clientIp)
        if (denied !== undefined) return Effect.fail(denied)
        // phase: validate
        return thenNow(validate(req, server), run, control)
      }

      /** phase: control (endpoints answered by the proxy itself, never routed). */
      const control = (run: Run, head: RequestHead): Decision => {
        const { req, res, ctx } = run
        run.head = head
        const t = head.target
        ctx.kind = t.form === "absolute" ? "forward" : "reverse"
        if (t.form === "origin" || (t.form === "absolute" && isSelf(t.hostname, t.port))) {
          // the token-guarded endpoints spend the client's budget first: no unbounded token guessing
          if (isCliPath(t.path)) return thenNow(admit(run), run, cli)
          if (serveMetrics !== undefined && isMetricsRequest(ctx.method, t.path)) {
            ctx.kind = "control"
            return thenNow(serveMetrics(req, res, ctx), run, answeredEarly)
          }
          if (isAdminPath(t.path)) {
            // the proxy's own endpoint, refused (401/403/429) or not: logged and counted as control
            ctx.kind = "control"
            return thenNow(admit(run), run, adminGate)
          }
          return health(run)
        }
        return maxForwardsPhase(run)
      }

      const cli = (run: Run, limit: RateLimitInfo | undefined): Decision => {
        rateLimitHeaders(run, limit)
        return thenNow(cliExecute(run.req, run.res, run.ctx, run.expectContinue), run, answeredEarly)
      }

      const adminGate = (run: Run, limit: RateLimitInfo | undefined): Decision => {
        rateLimitHeaders(run, limit)
        return thenNow(adminAuth(run.req.headers.authorization, run.ctx.clientIp, run.req.url ?? "/", run.req.headers.host), run, admin)
      }

      const admin = (run: Run): Decision => {
        const { ctx } = run
        const path = controlPath(run)
        const answer = adminAnswer(ctx.method, path, config, lifecycle.state(), clock.currentTimeMillisUnsafe() - bootMs)
        return answer !== undefined ? answerControl(run, answer) : thenNow(cacheAdmin(ctx.method, path), run, adminCache)
      }

      /** /admin/* belongs to the proxy: a path no admin endpoint serves is 404 here, never routed (the token stays in). */
      const adminCache = (run: Run, answer: ControlAnswer | undefined): Decision => {
        if (answer !== undefined) return answerControl(run, answer)
        run.ctx.kind = "control"
        return Effect.fail(new EndpointNotFound({ path: controlPath(run) }))
      }

      const health = (run: Run): Decision => {
        const answer = controlAnswer(run.ctx.method, controlPath(run), lifecycle.state)
        return answer !== undefined ? answerControl(run, answer) : maxForwardsPhase(run)
      }

      /** A control endpoint's answer, written. */
      const answerControl = (run: Run, answer: ControlAnswer): Decision => {
        const { res, ctx } = run
        ctx.kind = "control"
        ctx.bytesOut = writeControl(res, answer, ctx.method)
        ctx.status = answer.status
        return ANSWERED
      }

      /** phase: maxForwards, then filter (issue 4: domain / IP / SSRF → 403). */
      const maxForwardsPhase = (run: Run): Decision => {
        const { req, res, ctx } = run
        // OPTIONS * asks about the server the client talks to: this one (RFC 9110 §9.3.7)
        if (run.head!.target.form === "asterisk") return answerFinal(run)
        const mf = maxForwards(req)
        // Max-Forwards: 0 makes this proxy the final recipient (answered in `lookup`), but only for a
        // request the filter, the rate limit and proxy auth let through, as any other
        if (mf.answer) run.finalRecipient = true
        else run.maxForwards = mf.forward
        return thenNow(tracing.phase(ctx, "filter", filterPhase(filter, req, run.head!, ctx, isSelf)), run, rateLimit)
      }

      /** OPTIONS or TRACE answered by the proxy itself (RFC 9110 §7.6.2, §9.3.7, §9.3.8). */
      const answerFinal = (run: Run): Decision => {
        run.ctx.kind = "control"
        run.ctx.status = answerAsFinalRecipient(run.req, run.res, VIA)
        return ANSWERED
      }

      /** The client's budget (issue 4: → 429 when spent). */
      const admit = (run: Run): ReturnType<RateLimiter["Service"]["admit"]> => {
        const xff = run.req.headers["x-forwarded-for"]
        return rateLimiter.admit(run.ctx.clientIp, Array.isArray(xff) ? xff.join(", ") : xff)
      }

      /** Allowed responses carry RateLimit-Policy / RateLimit. */
      const rateLimitHeaders = (run: Run, limit: RateLimitInfo | undefined): void => {
        if (limit === undefined) return
        run.res.setHeader("ratelimit-policy", limit.policy)
        run.res.setHeader("ratelimit", limit.state)
      }

      /** phase: rateLimit (issue 4: → 429; allowed responses carry RateLimit-Policy / RateLimit). */
      const rateLimit = (run: Run, guard: ResponseGuard | undefined): Decision => {
        run.guard = guard
        return thenNow(admit(run), run, auth)
      }

      /**
       * phase: auth (issue 4: proxy auth → 407, forward-proxy requests only; after rateLimit so
       * failed attempts spend the client's budget: no unbounded credential guessing or hashing)
       */
      const auth = (run: Run, limit: RateLimitInfo | undefined): Decision => {
        rateLimitHeaders(run, limit)
        const t = run.head!.target
        if (proxyAuth.enabled && t.form === "absolute" && !isSelf(t.hostname, t.port)) {
          return thenNow(proxyAuth.check(run.req.headers["proxy-authorization"]), run, lookup)
        }
        return lookup(run)
      }

      /** phase: cacheLookup (a fresh hit answers here; miss/stale continue with a storing sink, phases/cacheLookup.ts). */
      const lookup = (run: Run): Decision =>
        run.finalRecipient ? answerFinal(run) : thenNow(cacheLookup(run.req, run.res, run.head!, run.ctx, run.guard), run, routePhase)

      /** phase: route, then (forward proxy) destination: the SSRF guard pins the checked address of the target (phases/destination.ts). */
      const routePhase = (run: Run, cached: CachePlan): Decision => {
        if (cached.answered) {
          hitBackend(run)
          return ANSWERED
        }
        run.cached = cached
        return thenNow(route(run.head!, run.req.headers.host ?? "", router, isSelf), run, destination)
      }

      /** A reverse-proxied cache hit still names the backend it stands for, in the metrics (routing is synchronous). */
      const hitBackend = (run: Run): void => {
        if (run.ctx.kind !== "reverse") return
        const routed = route(run.head!, run.req.headers.host ?? "", router, isSelf)
        if (Exit.isExit(routed) && Exit.isSuccess(routed)) run.ctx.backend = (routed as Exit.Success<Routed, never>).value.backend.origin
      }

      const destination = (run: Run, routed: Routed): Decision => thenNow(pinDestination(destinations, run.head!, routed), run, planned)

      const planned = (run: Run, routed: Routed): Decision => {
        run.ctx.kind = routed.kind
        run.ctx.upstream = routed.backend.origin
        return Effect.succeed({ head: run.head!, routed, guard: run.guard, cached: run.cached!, maxForwards: run.maxForwards } satisfies Plan)
      }

      /** Sampled requests: the phases run inside the request's fiber, under its span. */
      const decide = (run: Run): Decision => Effect.suspend(() => decision(run))
      /**
       * The rest: evaluated at once while every phase has already decided (an Exit: no fiber at all for
       * a typical request); from the first phase that really waits, the remainder runs as a fiber.
       * A throw in a phase becomes the request's defect, as inside a fiber.
       */
      const decideNow = (run: Run): Decision => {
        try {
          return decision(run)
        } catch (e) {
          return Exit.die(e)
        }
      }

      /** The upstream request's options for a plan (response filters in the order the upstream's bytes meet them). */
      const exchangeOptions = (req: IncomingMessage, plan: Plan, expectContinue: boolean, link: UpstreamLink, compressed: CompressedResponse | undefined): UpstreamPhaseOptions => ({
        // a cache store placed after `compress` keeps the encoded variant (Compression.ts)
        wrapSink: composeSinks([plan.guard?.wrap, compressed?.wrap, securityHeaders(plan.routed.backend.rule, (req.socket as { encrypted?: boolean }).encrypted === true), plan.cached.wrap]),
        rawHeaders: plan.cached.rawHeaders,
        via: VIA,
        maxBodyBytes: server.limits.max_body_bytes,
        maxForwards: plan.maxForwards,
        expectContinue,
        traceparent: link.traceparent,
        relayed: reclaimer.relayed
      })

      /** phase: upstream, as an Effect: for sampled requests (its spans nest in the request's). */
      const exchange = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext, plan: Plan, expectContinue: boolean): Effect.Effect<void, RequestError> => {
        const target = { method: ctx.method, origin: plan.routed.backend.origin, path: plan.routed.path }
        let compressed: CompressedResponse | undefined
        return tracing.upstream(ctx, target, (link) => {
          compressed = compress(req, res, link)
          return timeUpstream(ctx, forwardUpstream(upstream, req, res, plan.head, plan.routed, ctx, exchangeOptions(req, plan, expectContinue, link, compressed))
            .pipe(Effect.tap(() => compressed === undefined ? Effect.void : compressed.finished)))
        }).pipe(
          withVerdict(plan.guard),
          plan.cached.complete,
          Effect.map((result) => {
            ctx.status = result.status
            ctx.bytesOut = compressed?.bytesOut() ?? result.bytes
          })
        )
      }

      /** Metrics and the access-log line, for every outcome. */
      const record = (ctx: RequestContext): void => {
        const end = clock.monotonicTimeNanosUnsafe()
        metrics.request(ctx, end - ctx.startNs)
        if (ctx.cli !== undefined && ctx.cli.pid > 0) metrics.cliFinished(cliOutcome(ctx.cli))
        accessLog.log(accessEntry(ctx, end - ctx.startNs))
      }

      /**
       * A request that ended on the client's side: 499 if no response head went out, else the status
       * sent (as nginx logs them). A "client abort" that was the server's own timeout cutting the
       * connection is `read_timeout` (408 before any head) or `write_timeout` (socketTimeouts.ts).
       */
      const cutShort = (ctx: RequestContext, res: ServerResponse): void => {
        ctx.status = res.headersSent ? res.statusCode : 499
        if (recordBodyRefusal(res.req.socket, ctx)) return
        if (!wasCut(res.req.socket)) return
        if (res.req.complete || (res as RunOwner)[RUN]?.clientBehind === true) ctx.outcome = "write_timeout"
        else {
          ctx.outcome = "read_timeout"
          if (!res.headersSent) ctx.status = 408
        }
      }

      /** The one place a failure becomes an answer (errorResponse.ts), then `record`. */
      const finish = (ctx: RequestContext, res: ServerResponse, exit: Exit.Exit<void, RequestError>): void => {
        if (Exit.isSuccess(exit)) return record(ctx)
        const error = Cause.findErrorOption(exit.cause)
        if (error._tag === "Some") {
          const e = error.value
          ctx.outcome = e._tag === "UpstreamError" ? `upstream_${e.reason}` : e._tag
          metrics.refused(e)
          if (e._tag === "ClientAborted") {
            res.destroy()
            cutShort(ctx, res)
          } else writeProblem(res, problemFor(e), ctx)
          return record(ctx)
        }
        if (Cause.hasInterruptsOnly(exit.cause)) {
          ctx.outcome = "client_abort"
          cutShort(ctx, res)
          return record(ctx)
        }
        ctx.outcome = "defect"
        runFork(Effect.logError("request defect", Cause.pretty(exit.cause)))
        writeProblem(res, { status: 500, error: "internal", detail: "internal error" }, ctx)
        record(ctx)
      }

      const context = yield* Effect.context<never>()
      const runFork = Effect.runForkWith(context)
      let active = 0
      // (no per-request registry of runs for drain: a Set the runs pass through cost ~20 % CPU per
      // request and 40 MiB of peak RSS in GC work, measured; the Listener walks its connections instead)
      let draining = false
      const drain = Effect.sync(() => { draining = true })
      let idleWaiters: Array<() => void> = []
      const idle = Effect.callback<void>((resume) => {
        if (active === 0) resume(Effect.void)
        else idleWaiters.push(() => resume(Effect.void))
      })

      /** Wakes what waits on `idle` once no request is in flight. */
      const wakeIdleWaiters = (active: number) => {
        if (active === 0 && idleWaiters.length > 0) {
          const waiters = idleWaiters
          idleWaiters = []
          for (const w of waiters) w()
        }
      }

      /**
       * One request's run: decide (usually an Exit at once, else a fiber), then the exchange natively or
       * as a fiber, then `finish` exactly once. A class, not closures: the typical request allocates
       * one object here, and its steps are prototype methods. `cancel` stops whatever runs.
       */
      class Run {
        ended = false
        /** The decision or cache fiber being waited on (interrupted when the client goes away). */
        fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
        /** The upstream exchange in flight (native relay). */
        exchange: Aborter | undefined = undefined
        plan: Plan | undefined = undefined
        prepared: PreparedExchange | undefined = undefined
        /** The response's compression, when on (its encoded bytes are what the client got). */
        compressed: CompressedResponse | undefined = undefined
        /** What the decision phases found so far (see `decision`). */
        head: RequestHead | undefined = undefined
        guard: ResponseGuard | undefined = undefined
        cached: CachePlan | undefined = undefined
        maxForwards: number | undefined = undefined
        /** Max-Forwards: 0 — the proxy answers the OPTIONS / TRACE itself once the checks passed. */
        finalRecipient = false
        /** The inactivity timeout found the client not reading what was queued for it (upstreamWait). */
        clientBehind = false
        t0 = 0n
        readonly req: IncomingMessage
        readonly res: ServerResponse
        readonly ctx: RequestContext
        readonly expectContinue: boolean
        constructor(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, expectContinue: boolean) {
          this.req = req
          this.res = res
          this.ctx = ctx
          this.expectContinue = expectContinue
        }

        end(exit: Exit.Exit<void, RequestError>): void {
          if (this.ended) return
          this.ended = true
          this.fiber = undefined
          this.exchange = undefined
          finish(this.ctx, this.res, exit)
          wakeIdleWaiters(--active)
        }

        /** The client went away before the response was finished: stop what runs. */
        cancel(): void {
          if (this.ended) return
          const fiber = this.fiber
          const exchange = this.exchange
          if (fiber !== undefined) fiber.interruptUnsafe()
          else if (exchange !== undefined) {
            exchange.abort()
            this.ctx.bytesOut = exchange.bytes
            this.end(Exit.interrupt())
          }
        }

        /** The upstream stopped taking the request body (see `upstreamWait`): 504, and the connection closes. */
        upstreamStalled(): void {
          const exchange = this.exchange
          if (exchange === undefined || this.ended) return
          exchange.abort()
          this.exchange = undefined
          this.res.shouldKeepAlive = false
          this.ctx.upstreamNs = clock.monotonicTimeNanosUnsafe() - this.t0
          this.end(Exit.fail(new UpstreamError({
            reason: "timeout",
            upstream: this.ctx.upstream,
            responseStarted: this.res.headersSent,
            cause: new Error("the upstream did not take the request body for max(timeouts.read, timeouts.write)")
          })))
        }

        /** Runs an effect to `then`: at once when it is already an Exit or completes inside `runFork`, else observed (and cancellable). */
        step<A>(effect: Effect.Effect<A, RequestError>, then: (run: Run, exit: Exit.Exit<A, RequestError>) => void): void {
          if (Exit.isExit(effect)) return then(this, effect as Exit.Exit<A, RequestError>)
          const fiber = runFork(effect)
          const exit = fiber.pollUnsafe()
          if (exit !== undefined) return then(this, exit)
          this.fiber = fiber
          fiber.addObserver((exit) => {
            this.fiber = undefined
            then(this, exit)
          })
        }

        start(): void {
          const { req, res, ctx, expectContinue } = this
          if (ctx.traced) {
            // a sampled request: one fiber inside its SERVER span, so the phase spans nest under it
            const whole = Effect.flatMap(decide(this), (plan) => plan === undefined ? Effect.void : exchange(req, res, ctx, plan, expectContinue))
            const fiber = runFork(tracing.request(req, ctx, whole.pipe(
              Effect.onExit((exit) => Effect.sync(() => this.end(exit))),
              Effect.catchCause(() => Effect.void)
            )))
            if (fiber.pollUnsafe() === undefined && !this.ended) this.fiber = fiber
            return
          }
          this.step(decideNow(this), decided)
        }

        /** The exchange in undici's callbacks, then (compression finished) the verdict, then the cache's after-steps. */
        relay(plan: Plan): void {
          const { req, res, ctx } = this
          this.plan = plan
          const compressed = this.compressed = compress(req, res, NO_LINK)
          const x = this.prepared = prepareExchange(req, res, plan.head, plan.routed, ctx, exchangeOptions(req, plan, this.expectContinue, NO_LINK, compressed))
          this.t0 = clock.monotonicTimeNanosUnsafe()
          const exchange = upstream.send(x.request, x.sink, (outcome) => {
            if (compressed === undefined || outcome instanceof UpstreamError) this.settle(outcome)
            else compressed.whenFinished(() => this.settle(outcome))
          })
          if (!this.ended) this.exchange = exchange
        }

        settle(outcome: ForwardResult | UpstreamError): void {
          if (this.ended) return
          const { ctx } = this
          const plan = this.plan!
          this.exchange = undefined
          ctx.upstreamNs = clock.monotonicTimeNanosUnsafe() - this.t0
          const failure = outcome instanceof UpstreamError ? this.prepared!.failure(outcome) : undefined
          const refused = refusalFor(plan.guard, failure)
          if (refused !== undefined) runFork(logRefusal(refused))
          const exit: Exit.Exit<ForwardResult, RequestError> = refused !== undefined
            ? Exit.fail(refused)
            : failure !== undefined
            ? Exit.fail(failure)
            : Exit.succeed(outcome as ForwardResult)
          // the cache's store / invalidation / coalescing release / stale-if-error (an Effect:
          // synchronous for the memory backend, a fiber while Redis answers)
          if (hasCompletion(plan.cached)) this.step(plan.cached.complete(exit), answered)
          else answered(this, exit)
        }
      }

      /** The decision's outcome: an answer or failure ends the request; a plan goes to the relay. */
      const decided = (run: Run, exit: Exit.Exit<Plan | undefined, RequestError>): void => {
        if (Exit.isFailure(exit) || exit.value === undefined) return run.end(exit as Exit.Exit<void, RequestError>)
        // the native relay: undici's callbacks to the end, no fiber. A throw here would reach the
        // server's event emitter (or whatever resumed the decision fiber): it becomes this request's defect
        try {
          run.relay(exit.value)
        } catch (e) {
          run.end(Exit.die(e))
        }
      }

      const answered = (run: Run, exit: Exit.Exit<ForwardResult, RequestError>): void => {
        if (Exit.isFailure(exit)) return run.end(exit)
        run.ctx.status = exit.value.status
        run.ctx.bytesOut = run.compressed?.bytesOut() ?? exit.value.bytes
        run.end(Exit.void)
      }

      const handle = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void => {
        const rid = req.headers["x-request-id"]
        const ctx = newRequestContext(
          requestId(typeof rid === "string" ? rid : undefined),
          clock.monotonicTimeNanosUnsafe(),
          normaliseIp(req.socket.remoteAddress),
          req.method ?? "GET",
          req.url ?? ""
        )
        tracing.sample(req, ctx)
        active++
        const run = new Run(req, res, ctx, expectContinue)
        if (draining) res.shouldKeepAlive = false
        ;(res as RunOwner)[RUN] = run
        res.on("close", onResponseClose)
        run.start()
      }

      const upstreamWait = (socket: object): boolean => {
        const res = responseInFlight(socket)
        const run = res === undefined ? undefined : (res as RunOwner)[RUN] as Run | undefined
        if (res === undefined || run === undefined || run.ended) return false
        const req = res.req
        // the client not reading what is already queued for it is the client's stall, whatever else waits
        // (a full-duplex exchange: the origin stops taking the body because its answer backs up)
        const clientBehind = (socket as { writableLength?: number }).writableLength !== 0 || res.writableNeedDrain
        if (clientBehind) {
          run.clientBehind = true // (cut as the client's: `write_timeout`, see cutShort)
          return false
        }
        if (req.complete) return true
        // body bytes wait in the request stream: the proxy is not taking them, its upstream is not
        if (req.readableLength === 0 || run.exchange === undefined) return false
        run.upstreamStalled()
        return true
      }

      return RequestPipeline.of({ requestId, isSelf, handle, idle, inFlight: () => active, drain, upstreamWait })
    })
  )
}

/** What the decision phases hand to the exchange. */
interface Plan {
  readonly head: RequestHead
  readonly routed: Routed
  readonly guard: ResponseGuard | undefined
  readonly cached: CachePlan
  readonly maxForwards: number | undefined
}

const NO_LINK: UpstreamLink = { traceparent: undefined, span: undefined }

/** What a decision step hands on: an early answer (`undefined`), a typed failure, or the plan. */
type Decision = Effect.Effect<Plan | undefined, RequestError>
const ANSWERED: Decision = Effect.succeed(undefined)
const answeredEarly = (): Decision => ANSWERED
/** The path of a request the control phase serves (origin-form, or absolute-form naming this listener). */
const controlPath = (run: { readonly head: RequestHead | undefined }): string => {
  const t = run.head!.target
  return t.form === "asterisk" ? "*" : t.path
}

/** The run a response belongs to (one shared 'close' listener instead of a closure per request). */
const RUN = Symbol("gatehouse/Run")
interface RunOwner { [RUN]?: { cancel(): void; readonly ended: boolean; readonly clientBehind: boolean } }
function onResponseClose(this: ServerResponse) {
  // (a run that already ended ignores cancel)
  if (!this.writableFinished) (this as RunOwner)[RUN]?.cancel()
}

/** "::ffff:10.0.0.1" → "10.0.0.1". */
export const normaliseIp = (ip: string | undefined): string =>
  ip === undefined ? "" : ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip

export { hostnameOf }
