/**
 * OpenTelemetry traces, exported over OTLP/HTTP (JSON) with a BatchSpanProcessor. When
 * `tracing.enabled` is false the layer provides pass-through functions and no tracer: the request
 * path creates no spans at all (the choice is made once, here, when the layer is built).
 *
 * Sampling is decided at the head of each request, before any span exists: a client traceparent's
 * sampled flag is followed, a new trace is kept with probability `sample_ratio`. An unsampled
 * request takes the same pass-through path as tracing off (its traceparent, if any, is relayed
 * unchanged; its trace id still goes to the access log), so unsampled traffic costs no span work.
 *
 * Spans (OTel HTTP semantic conventions): a SERVER span per request continuing the client's W3C
 * traceparent; a CLIENT span for the upstream exchange whose context goes upstream as
 * `traceparent`; a `compress` child of it while a body is compressed; `tracing.phase(name, ...)`
 * for other phases (filter, rateLimit, cacheLookup). CONNECT and Upgrade tunnels get none (their
 * paths, connectTunnel.ts and upgradeTunnel.ts, do not go through this service).
 *
 * The exporter's failures (collector down, refusing or not answering) are logged: a warning when a
 * streak of failed exports begins, an info line when an export succeeds again. At shutdown the last
 * batch gets SHUTDOWN_FLUSH_MS to go out, then is dropped.
 */
import type * as OtelTracerModule from "@effect/opentelemetry/OtelTracer"
import * as Otel from "@opentelemetry/api"
import type { SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { IncomingMessage } from "node:http"
import { methodLabel } from "../domain/metricLabels.ts"
import type { RequestContext } from "../domain/RequestContext.ts"
import { redactUserinfo } from "../domain/redactUserinfo.ts"
import { formatTraceparent, parseTraceparent } from "../domain/traceparent.ts"
import { Config } from "./Config.ts"
import type { ForwardResult } from "./Upstream.ts"

/** A span for work that runs in native callbacks (a compression stream), ended by its owner. */
export interface StreamSpan {
  end(attributes: Record<string, string | number>): void
}

/** What the upstream phase gets from its span: the traceparent to send and a child-span starter. */
export interface UpstreamLink {
  readonly traceparent: string | undefined
  readonly span: ((name: string) => StreamSpan) | undefined
}

export interface UpstreamTarget {
  readonly method: string
  readonly origin: string
  readonly path: string
}

export interface TracingService {
  readonly enabled: boolean
  /** Head sampling for one request, before anything runs: sets `ctx.traced` and `ctx.traceId`. */
  sample(req: IncomingMessage, ctx: RequestContext): void
  /** Runs a whole request (already never-failing) inside its SERVER span; call only when `ctx.traced`. */
  request(req: IncomingMessage, ctx: RequestContext, effect: Effect.Effect<void>): Effect.Effect<void>
  /** A child span around one phase (sampled requests only). */
  phase<A, E, R>(ctx: RequestContext, name: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R>
  /** The upstream exchange inside a CLIENT span (sampled requests only). */
  upstream<E, R>(ctx: RequestContext, target: UpstreamTarget, f: (link: UpstreamLink) => Effect.Effect<ForwardResult, E, R>): Effect.Effect<ForwardResult, E, R>
}

const NO_STACK = { captureStackTrace: false } as const
const NO_LINK: UpstreamLink = { traceparent: undefined, span: undefined }

const disabled: TracingService = {
  enabled: false,
  sample: () => {},
  request: (_req, _ctx, effect) => effect,
  phase: (_ctx, _name, effect) => effect,
  upstream: (_ctx, _target, f) => f(NO_LINK)
}

/** Marks the server span as failed for a 5xx answer (semconv: server errors only). */
class ServerErrorStatus extends Data.TaggedError("ServerErrorStatus")<{ readonly status: number }> {
  override get message() {
    return `HTTP ${this.status}`
  }
}

const KNOWN = (method: string) => methodLabel(method) !== "OTHER"


/**
 * W3C Trace Context §3.3: a `tracestate` belongs to the `traceparent` it came with. A trace the proxy
 * starts (no valid traceparent came) goes upstream with the proxy's traceparent, so the client's
 * tracestate must not go with it: it is taken out of the raw headers the upstream request is built from.
 */
const dropTracestate = (req: IncomingMessage): void => {
  const raw = req.rawHeaders
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === "tracestate") raw.splice(i, 2)
}

const serverAttributes = (req: IncomingMessage, ctx: RequestContext): Record<string, unknown> => {
  const url = ctx.url
  const q = url.indexOf("?")
  const attrs: Record<string, unknown> = {
    "http.request.method": KNOWN(ctx.method) ? ctx.method : "_OTHER",
    "url.scheme": "http",
    "client.address": ctx.clientIp,
    "network.protocol.version": req.httpVersion,
    "gatehouse.request_id": ctx.id
  }
  if (!KNOWN(ctx.method)) attrs["http.request.method_original"] = ctx.method
  if (url.startsWith("/")) attrs["url.path"] = q < 0 ? url : url.slice(0, q)
  else attrs["url.full"] = redactUserinfo(q < 0 ? url : url.slice(0, q))
  const host = req.headers.host
  if (host !== undefined) {
    const colon = host.lastIndexOf(":")
    const hasPort = colon > 0 && !host.endsWith("]")
    attrs["server.address"] = hasPort ? host.slice(0, colon) : host
    if (hasPort) attrs["server.port"] = Number(host.slice(colon + 1))
  }
  const ua = req.headers["user-agent"]
  if (ua !== undefined) attrs["user_agent.original"] = ua
  return attrs
}

const clientAttributes = (t: UpstreamTarget): Record<string, unknown> => {
  const u = new URL(t.origin)
  const q = t.path.indexOf("?")
  return {
    "http.request.method": KNOWN(t.method) ? t.method : "_OTHER",
    "server.address": u.hostname,
    "server.port": Number(u.port || (u.protocol === "https:" ? 443 : 80)),
    "url.full": t.origin + (q < 0 ? t.path : t.path.slice(0, q))
  }
}

const makeEnabled = (OtelTracer: typeof OtelTracerModule, sampleRatio: number) => Effect.gen(function*() {
  const tracer = yield* OtelTracer.OtelTracer
  const service: TracingService = {
    enabled: true,
    sample: (req, ctx) => {
      const tp = parseTraceparent(req.headers.traceparent)
      // head sampling: the client's decision when it sent one, else sample_ratio for a new trace
      if (tp === undefined ? !(Math.random() < sampleRatio) : (tp.flags & 1) === 0) ctx.traceId = tp?.traceId ?? ""
      else ctx.traced = true
    },
    request: (req, ctx, effect) => {
      if (!ctx.traced) return effect
      const tp = parseTraceparent(req.headers.traceparent)
      const state = req.headers.tracestate
      if (tp === undefined && state !== undefined) dropTracestate(req)
      const parent = tp === undefined ? undefined : OtelTracer.makeExternalSpan({
        traceId: tp.traceId,
        spanId: tp.spanId,
        traceFlags: tp.flags,
        traceState: typeof state === "string" ? state : undefined
      })
      const body = Effect.flatMap(Effect.currentSpan, (span) => {
        ctx.traceId = span.traceId
        return Effect.flatMap(effect, () => {
          span.attribute("http.response.status_code", ctx.status)
          if (ctx.status >= 500) {
            span.attribute("error.type", String(ctx.status))
            return Effect.fail(new ServerErrorStatus({ status: ctx.status }))
          }
          return Effect.void
        })
      })
      return body.pipe(
        Effect.withSpan(KNOWN(ctx.method) ? ctx.method : "HTTP", {
          kind: "server",
          parent,
          attributes: serverAttributes(req, ctx)
        }, NO_STACK),
        Effect.ignore
      )
    },
    phase: (ctx, name, effect) => ctx.traced ? Effect.withSpan(effect, name, NO_STACK) : effect,
    upstream: (ctx, target, f) =>
      !ctx.traced ? f(NO_LINK) : Effect.flatMap(Effect.orDie(OtelTracer.currentOtelSpan), (otelSpan) => {
        const sc = otelSpan.spanContext()
        const parentCtx = Otel.trace.setSpan(Otel.ROOT_CONTEXT, otelSpan)
        const link: UpstreamLink = {
          traceparent: formatTraceparent(sc.traceId, sc.spanId, (sc.traceFlags & Otel.TraceFlags.SAMPLED) === Otel.TraceFlags.SAMPLED),
          span: (name) => {
            const s = tracer.startSpan(name, { kind: Otel.SpanKind.INTERNAL }, parentCtx)
            return {
              end: (attributes) => {
                s.setAttributes(attributes)
                s.end()
              }
            }
          }
        }
        return Effect.tap(f(link), (r) => Effect.sync(() => otelSpan.setAttribute("http.response.status_code", r.status)))
      }).pipe(
        Effect.withSpan(KNOWN(target.method) ? target.method : "HTTP", {
          kind: "client",
          attributes: clientAttributes(target)
        }, NO_STACK)
      )
  }
  return service
})

/**
 * How long the final flush at shutdown may take: a collector that does not answer would otherwise hold
 * the exit for the exporter's own timeout. What has not gone out by then is dropped.
 */
const SHUTDOWN_FLUSH_MS = 2000

/**
 * The exporter, reporting whether its exports work: `report(true, error)` when a streak of failed
 * exports begins (one line for a dead collector, not one per batch), `report(false)` when an export
 * succeeds after failures. `pending` counts the exports not yet answered (a flush cut at shutdown).
 */
const reportingFailures = (exporter: SpanExporter, report: (failing: boolean, error: unknown) => void) => {
  let failing = false
  let pending = 0
  const reporting: SpanExporter = {
    export: (spans, done) => {
      pending++
      exporter.export(spans, (result) => {
        pending--
        // (ExportResultCode.SUCCESS is 0)
        const failed = result.code !== 0
        if (failed !== failing) {
          failing = failed
          report(failed, result.error)
        }
        done(result)
      })
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve()
  }
  return { exporter: reporting, pending: () => pending }
}

/**
 * The OpenTelemetry tracer provider (OTLP/HTTP exporter, batch processor, sampler) as Effect's Tracer.
 * The SDK modules are loaded only when tracing is on.
 */
const enabledLayer = (cfg: { otlp_endpoint: string; sample_ratio: number; service_name: string }) =>
  Layer.unwrap(Effect.gen(function*() {
    const [NodeSdk, OtelTracer, OtelResource, { OTLPTraceExporter }, { AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler }] =
      yield* Effect.promise(() =>
        Promise.all([
          import("@effect/opentelemetry/NodeSdk"),
          import("@effect/opentelemetry/OtelTracer"),
          import("@effect/opentelemetry/Resource"),
          import("@opentelemetry/exporter-trace-otlp-http"),
          import("@opentelemetry/sdk-trace-base")
        ])
      )
    // the exporter reports from its own callbacks: logged with the application's logger
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const report = (failing: boolean, error: unknown) =>
      runFork(
        failing
          ? Effect.logWarning("trace export failing; spans are dropped until it works again").pipe(
            Effect.annotateLogs({ endpoint: cfg.otlp_endpoint, error: String(error ?? "export failed") })
          )
          : Effect.logInfo("trace export working again").pipe(Effect.annotateLogs({ endpoint: cfg.otlp_endpoint }))
      )
    const exporting = reportingFailures(new OTLPTraceExporter({ url: cfg.otlp_endpoint }), report)
    // built before the tracer provider, so its finalizer runs after the provider's bounded last flush:
    // says what that flush left unsent (a collector that did not answer in time)
    const unsentAtExit = Layer.effectDiscard(Effect.addFinalizer(() =>
      Effect.suspend(() =>
        exporting.pending() === 0 ? Effect.void : Effect.logWarning("trace export unfinished at shutdown; its spans are dropped").pipe(
          Effect.annotateLogs({ endpoint: cfg.otlp_endpoint, waited_ms: SHUTDOWN_FLUSH_MS })
        )
      )
    ))
    const otel = OtelTracer.layer.pipe(
      Layer.provide(NodeSdk.layerTracerProvider(
        new BatchSpanProcessor(exporting.exporter),
        {
          // the ratio is applied per request at the head (TracingService.request); spans are only made for sampled requests
          sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
          shutdownTimeout: SHUTDOWN_FLUSH_MS
        }
      )),
      Layer.provide(OtelResource.layer({ serviceName: cfg.service_name }))
    )
    return Layer.effect(Tracing, makeEnabled(OtelTracer, cfg.sample_ratio)).pipe(Layer.provideMerge(otel), Layer.provideMerge(unsentAtExit))
  }))

export class Tracing extends Context.Service<Tracing, TracingService>()("gatehouse/Tracing") {
  /**
   * From `tracing:` config. When enabled the layer also provides Effect's Tracer (backed by
   * OpenTelemetry), so fibers started by the Listener's runtime record to it.
   */
  static readonly layer: Layer.Layer<Tracing, never, Config> = Layer.unwrap(
    Effect.gen(function*() {
      const { tracing } = yield* Config
      if (!tracing.enabled) return Layer.succeed(Tracing, disabled)
      return enabledLayer(tracing)
    })
  )

  static readonly layerDisabled = Layer.succeed(Tracing, disabled)
}
