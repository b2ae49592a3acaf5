/**
 * OpenTelemetry metrics, exported in Prometheus text by @opentelemetry/exporter-prometheus on
 * `metrics.host:metrics.port` /metrics (and on the main port, see the pipeline's control phase).
 *
 * Hot path: the hooks below only bump plain numbers in cells keyed by bounded label sets. The
 * OpenTelemetry SDK reads them at scrape time: counters and gauges as asynchronous (observable)
 * instruments, histograms through a MetricProducer handed to the exporter (OTel's bridge for
 * pre-aggregated data). A synchronous `counter.add(1, attrs)` costs ~1-2 µs per call in the SDK
 * (attribute hashing); a cell update costs a Map lookup.
 *
 * Hooks other parts call (plain functions: they run in native callbacks too):
 *   request(ctx, ns) and refused(error) at the access-log points (pipeline, CONNECT and Upgrade tunnels),
 *   cliFinished(outcome), compressed(coding, in, out), connections(±1), tunnels(±1);
 *   observePools / observeCache / observeCliRunning / observeReclaimer register readers called at scrape time.
 */
import { type Attributes, ValueType } from "@opentelemetry/api"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { resourceFromAttributes } from "@opentelemetry/resources"
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type HistogramMetricData,
  MeterProvider,
  type MetricProducer
} from "@opentelemetry/sdk-metrics"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { RequestError } from "../domain/errors.ts"
import {
  DURATION_BUCKETS,
  FixedHistogram,
  LabelledCounter,
  methodLabel,
  RATIO_BUCKETS,
  refusalOf,
  statusClassLabel
} from "../domain/metricLabels.ts"
import type { RequestContext } from "../domain/RequestContext.ts"
import { parseBackend } from "../domain/routeTable.ts"
import { Config } from "./Config.ts"
import { listenServer } from "./listenServer.ts"
import type { PoolStats } from "./Upstream.ts"
import type { ReclaimerStats } from "./Reclaimer.ts"

/** What the cache reports at scrape time (Cache.stats): per-instance counters, store-wide size. */
export interface CacheFigures {
  readonly entries: number
  readonly bytes: number
  readonly hits: number
  readonly misses: number
  readonly evictions: number
  readonly stale_serves: number
  readonly coalesced_requests: number
  readonly stores: number
}

export interface MetricsHooks {
  readonly enabled: boolean
  /** One finished request (called from the access-log point, whatever the outcome). */
  readonly request: (ctx: RequestContext, durationNs: bigint) => void
  readonly connections: (delta: 1 | -1) => void
  readonly tunnels: (delta: 1 | -1) => void
  readonly compressed: (coding: string, bytesIn: number, bytesOut: number) => void
  /** A request refused by a filter/policy rule (blocked) or by rate limiting, counted by rule. */
  readonly refused: (error: RequestError) => void
  /** A CLI process ended (outcome from metricLabels.cliOutcome). */
  readonly cliFinished: (outcome: string) => void
  /**
   * Answers GET or HEAD /metrics with the Prometheus text (undefined when metrics are off); resolves,
   * once the answer is written, with the body bytes sent (0 for HEAD), for the access log.
   */
  readonly serve: ((req: IncomingMessage, res: ServerResponse) => Promise<number>) | undefined
  /** Port of the metrics listener (0 when off). */
  readonly port: number
  /** Registers the upstream pools' stats reader (read at scrape time). */
  readonly observePools: (read: () => ReadonlyMap<string, PoolStats>) => void
  /** Registers the cache's stats reader (read at scrape time; Redis answers within its command timeout). */
  readonly observeCache: (read: () => Promise<CacheFigures>) => void
  /** Registers the CLI runner's count of running processes (read at scrape time). */
  readonly observeCliRunning: (read: () => number) => void
  /** Registers the Reclaimer's counts of relayed bytes and forced scavenges (read at scrape time). */
  readonly observeReclaimer: (read: () => ReclaimerStats) => void
}

interface RequestCell {
  readonly attrs: Attributes
  requests: number
  bytesIn: number
  bytesOut: number
  readonly duration: FixedHistogram
}

const noop = () => {}
const disabled: MetricsHooks = {
  enabled: false,
  request: noop,
  connections: noop,
  tunnels: noop,
  compressed: noop,
  refused: noop,
  cliFinished: noop,
  serve: undefined,
  port: 0,
  observePools: noop,
  observeCache: noop,
  observeCliRunning: noop,
  observeReclaimer: noop
}

/** Outcomes that end a request on the client's side: they say nothing about the backend's health. */
const CLIENT_SIDE_OUTCOMES: ReadonlySet<string> = new Set(["client_abort", "ClientAborted", "read_timeout", "write_timeout"])
/** Upstream failures that say the backend itself is unreachable (passive health). */
const DOWN_OUTCOMES: ReadonlySet<string> = new Set(["upstream_connect", "upstream_dns", "upstream_timeout", "upstream_tls"])

const hrNow = (): [number, number] => {
  const ms = performance.timeOrigin + performance.now()
  const s = Math.floor(ms / 1000)
  return [s, Math.round((ms - s * 1000) * 1e6)]
}

const histogramData = (
  name: string,
  description: string,
  start: [number, number],
  end: [number, number],
  points: Iterable<readonly [Attributes, FixedHistogram]>
): HistogramMetricData => {
  const dataPoints: HistogramMetricData["dataPoints"] = []
  for (const [attributes, h] of points) {
    if (h.count === 0) continue
    dataPoints.push({
      startTime: start,
      endTime: end,
      attributes,
      value: {
        buckets: { boundaries: [...h.boundaries], counts: [...h.counts] },
        sum: h.sum,
        count: h.count,
        min: h.min,
        max: h.max
      }
    })
  }
  return {
    descriptor: { name, description, unit: "", valueType: ValueType.DOUBLE },
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints
  }
}

const makeEnabled = Effect.gen(function*() {
  const config = yield* Config
  let pools: () => ReadonlyMap<string, PoolStats> = () => new Map()
  let cacheStats: () => Promise<CacheFigures | undefined> = () => Promise.resolve(undefined)
  let cliRunning: () => number = () => 0
  let reclaimer: () => ReclaimerStats = () => ({ relayedBytes: 0, forced: 0 })
  const { metrics: cfg } = config
  const startTime = hrNow()

  // --- hot-path state: plain numbers in bounded cells -------------------------------------
  const requestCells = new Map<string, RequestCell>()
  const upstreamCells = new Map<string, { attrs: Attributes; h: FixedHistogram }>()
  const backendUp = new Map<string, number>()
  const compression = new Map<string, { attrs: Attributes; responses: number; in: number; out: number; ratio: FixedHistogram }>()
  const blocked = new LabelledCounter(64)
  const rateLimited = new LabelledCounter(64)
  const cliFinished = new LabelledCounter(16)
  let activeConnections = 0
  let activeTunnels = 0
  // Only configured backends get their own pool label; forward-proxy origins are summed as "forward".
  const configuredOrigins = new Set<string>()
  for (const r of config.routing.rules) configuredOrigins.add(parseBackend(r.forward.target).origin)
  if (config.routing.default_backend !== "") configuredOrigins.add(parseBackend(config.routing.default_backend).origin)

  const routeOf = (ctx: RequestContext): string => {
    if (ctx.kind !== "reverse") return ctx.kind
    const origin = ctx.upstream !== "" ? ctx.upstream : ctx.backend
    return configuredOrigins.has(origin) ? origin : "reverse"
  }

  // route → method → status class (index 0 "none", 1..5 "1xx".."5xx"): found without building a key
  // string per request (label values are config or constant strings, their hashes are cached)
  const cellIndex = new Map<string, Map<string, Array<RequestCell | undefined>>>()
  const request = (ctx: RequestContext, durationNs: bigint) => {
    const method = methodLabel(ctx.method)
    const route = routeOf(ctx)
    const status = ctx.status
    const clsIndex = status >= 100 && status < 600 ? Math.floor(status / 100) : 0
    let byMethod = cellIndex.get(route)
    if (byMethod === undefined) cellIndex.set(route, byMethod = new Map())
    let byClass = byMethod.get(method)
    if (byClass === undefined) byMethod.set(method, byClass = [])
    let cell = byClass[clsIndex]
    if (cell === undefined) {
      const cls = statusClassLabel(status)
      cell = {
        attrs: { method, status_class: cls, route },
        requests: 0,
        bytesIn: 0,
        bytesOut: 0,
        duration: new FixedHistogram(DURATION_BUCKETS)
      }
      byClass[clsIndex] = cell
      requestCells.set(`${method} ${cls} ${route}`, cell)
    }
    cell.requests++
    cell.bytesIn += ctx.bytesIn
    cell.bytesOut += ctx.bytesOut
    cell.duration.record(Number(durationNs) / 1e9)
    if (ctx.upstreamNs > 0n) {
      let u = upstreamCells.get(route)
      if (u === undefined) {
        u = { attrs: { route }, h: new FixedHistogram(DURATION_BUCKETS) }
        upstreamCells.set(route, u)
      }
      u.h.record(Number(ctx.upstreamNs) / 1e9)
    }
    if (ctx.kind === "reverse" && !CLIENT_SIDE_OUTCOMES.has(ctx.outcome) && configuredOrigins.has(ctx.upstream)) {
      const up = DOWN_OUTCOMES.has(ctx.outcome) ? 0 : 1
      if (backendUp.get(ctx.upstream) !== up) backendUp.set(ctx.upstream, up)
    }
  }

  const compressed = (coding: string, bytesIn: number, bytesOut: number) => {
    let c = compression.get(coding)
    if (c === undefined) {
      c = { attrs: { algorithm: coding }, responses: 0, in: 0, out: 0, ratio: new FixedHistogram(RATIO_BUCKETS) }
      compression.set(coding, c)
    }
    c.responses++
    c.in += bytesIn
    c.out += bytesOut
    if (bytesIn > 0) c.ratio.record(bytesOut / bytesIn)
  }

  // --- the OpenTelemetry side, read at scrape time ------------------------------------------
  const producer: MetricProducer = {
    collect: (): Promise<CollectionResult> => {
      const end = hrNow()
      return Promise.resolve({
        resourceMetrics: {
          resource: resourceFromAttributes({}),
          scopeMetrics: [{
            scope: { name: "gatehouse" },
            metrics: [
              histogramData("gatehouse_http_request_duration_seconds", "Time from request received to response finished, seconds", startTime, end,
                [...requestCells.values()].map((c) => [c.attrs, c.duration] as const)),
              histogramData("gatehouse_upstream_duration_seconds", "Time spent on the upstream exchange (connect to last byte), seconds", startTime, end,
                [...upstreamCells.values()].map((u) => [u.attrs, u.h] as const)),
              histogramData("gatehouse_compression_ratio", "Compressed size / original size per compressed response", startTime, end,
                [...compression.values()].map((c) => [c.attrs, c.ratio] as const))
            ]
          }]
        },
        errors: []
      })
    }
  }
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, metricProducers: [producer] })
  const provider = yield* Effect.acquireRelease(
    Effect.sync(() =>
      new MeterProvider({
        resource: resourceFromAttributes({ "service.name": config.tracing.service_name }),
        readers: [exporter]
      })
    ),
    (p) => Effect.promise(() => p.shutdown().catch(() => undefined))
  )
  const meter = provider.getMeter("gatehouse")
  const counter = (name: string, description: string, read: (observe: (v: number, a?: Attributes) => void) => void) =>
    meter.createObservableCounter(name, { description }).addCallback((o) => read((v, a) => o.observe(v, a)))
  const gauge = (name: string, description: string, read: (observe: (v: number, a?: Attributes) => void) => void) =>
    meter.createObservableGauge(name, { description }).addCallback((o) => read((v, a) => o.observe(v, a)))
  const family = (c: LabelledCounter, label: string) => (observe: (v: number, a?: Attributes) => void) => {
    for (const [k, v] of c.values) observe(v, { [label]: k })
  }

  counter("gatehouse_http_requests", "Requests answered, by method, status class and route", (o) => {
    for (const c of requestCells.values()) o(c.requests, c.attrs)
  })
  counter("gatehouse_http_request_body_bytes", "Request body bytes received from clients", (o) => {
    for (const c of requestCells.values()) o(c.bytesIn, c.attrs)
  })
  counter("gatehouse_http_response_body_bytes", "Response body bytes sent to clients (as sent: after compression), the proxy's own answers included", (o) => {
    for (const c of requestCells.values()) o(c.bytesOut, c.attrs)
  })
  gauge("gatehouse_active_connections", "Client connections open", (o) => o(activeConnections))
  gauge("gatehouse_active_tunnels", "CONNECT and Upgrade (WebSocket) tunnels open", (o) => o(activeTunnels))
  // Cache: one read of Cache.stats per scrape feeds every cache family (a batch callback)
  const cacheFamilies = {
    hits: meter.createObservableCounter("gatehouse_cache_hits", { description: "Requests answered from the cache (fresh or stale), this instance" }),
    misses: meter.createObservableCounter("gatehouse_cache_misses", { description: "Cacheable requests that went upstream (miss or revalidation), this instance" }),
    stale: meter.createObservableCounter("gatehouse_cache_stale_serves", { description: "Stale responses served (max-stale, stale-while-revalidate, stale-if-error), this instance" }),
    coalesced: meter.createObservableCounter("gatehouse_cache_coalesced_requests", { description: "Requests that waited for another request's upstream response and reused it, this instance" }),
    stores: meter.createObservableCounter("gatehouse_cache_stores", { description: "Responses written to the cache, this instance" }),
    evictions: meter.createObservableCounter("gatehouse_cache_evictions", { description: "Entries evicted to stay within max_memory (Redis: the server's evicted_keys)" }),
    bytes: meter.createObservableGauge("gatehouse_cache_size_bytes", { description: "Bytes held by the cache store (Redis: shared by every instance)" }),
    entries: meter.createObservableGauge("gatehouse_cache_entries", { description: "Stored responses (variants) held by the cache store" })
  }
  meter.addBatchObservableCallback(async (o) => {
    const s = await cacheStats().catch(() => undefined)
    if (s === undefined) return
    o.observe(cacheFamilies.hits, s.hits)
    o.observe(cacheFamilies.misses, s.misses)
    o.observe(cacheFamilies.stale, s.stale_serves)
    o.observe(cacheFamilies.coalesced, s.coalesced_requests)
    o.observe(cacheFamilies.stores, s.stores)
    o.observe(cacheFamilies.evictions, s.evictions)
    o.observe(cacheFamilies.bytes, s.bytes)
    o.observe(cacheFamilies.entries, s.entries)
  }, Object.values(cacheFamilies))
  counter("gatehouse_compressed_responses", "Responses compressed by the proxy, by algorithm", (o) => {
    for (const c of compression.values()) o(c.responses, c.attrs)
  })
  counter("gatehouse_compression_input_bytes", "Bytes before compression, by algorithm", (o) => {
    for (const c of compression.values()) o(c.in, c.attrs)
  })
  counter("gatehouse_compression_output_bytes", "Bytes after compression, by algorithm", (o) => {
    for (const c of compression.values()) o(c.out, c.attrs)
  })
  counter("gatehouse_blocked_requests", "Requests refused by a filter or policy rule (403), by the rule's config key", family(blocked, "rule"))
  counter("gatehouse_rate_limited_requests", "Requests refused by rate limiting (429, or 503 when its backend is down and on_backend_error is deny)", family(rateLimited, "rule"))
  gauge("gatehouse_cli_processes_running", "CLI processes running", (o) => o(cliRunning()))
  counter("gatehouse_cli_processes_finished", "CLI processes finished, by outcome", family(cliFinished, "outcome"))
  counter("gatehouse_relayed_bytes", "Bytes relayed through tunnels (both ways), response bodies, and chunked or 1 MiB+ request bodies (what the Reclaimer counts)", (o) => o(reclaimer().relayedBytes))
  counter("gatehouse_forced_scavenges", "Young-generation collections forced after 16 MiB relayed without one (Reclaimer)", (o) => o(reclaimer().forced))
  gauge("gatehouse_backend_up", "1 if the last exchange with a configured backend reached it, else 0", (o) => {
    for (const [backend, up] of backendUp) o(up, { backend })
  })
  const poolGauge = (name: string, description: string, pick: (s: { connected: number; free: number; pending: number; queued: number; running: number }) => number) =>
    gauge(name, description, (o) => {
      let forward = 0
      let anyForward = false
      for (const [origin, st] of pools()) {
        if (configuredOrigins.has(origin)) o(pick(st), { origin })
        else {
          forward += pick(st)
          anyForward = true
        }
      }
      if (anyForward) o(forward, { origin: "forward" })
    })
  poolGauge("gatehouse_upstream_pool_connections", "Open upstream connections per pool", (s) => s.connected)
  poolGauge("gatehouse_upstream_pool_free_connections", "Idle upstream connections per pool", (s) => s.free)
  poolGauge("gatehouse_upstream_pool_running_requests", "Requests in flight on upstream connections per pool", (s) => s.running)
  poolGauge("gatehouse_upstream_pool_queued_requests", "Requests waiting for an upstream connection per pool", (s) => s.pending) // undici: a Pool's pending includes its queue

  // the exporter's own handler, but with the body's length known (the access log's bytes_out) and
  // the exposition format's content type; the serializer's settings are the exporter's
  const serializer = new PrometheusSerializer("", false, undefined, false, true)
  const serve = (req: IncomingMessage, res: ServerResponse): Promise<number> =>
    exporter.collect().then(
      ({ resourceMetrics }) => serializer.serialize(resourceMetrics),
      (err) => `# failed to export metrics: ${err}\n`
    ).then((text) => {
      const length = Buffer.byteLength(text)
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": length })
      if (req.method === "HEAD") {
        res.end()
        return 0
      }
      res.end(text)
      return length
    })

  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0]
    if (path === "/metrics" && (req.method === "GET" || req.method === "HEAD")) return void serve(req, res)
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
  })
  const port = yield* Effect.acquireRelease(
    listenServer(server, "metrics", cfg.port, cfg.host),
    () => Effect.sync(() => {
      server.close()
      server.closeAllConnections()
    })
  )
  // the bound port: with `metrics.port: 0` this line is the only place it is told
  yield* Effect.logInfo("metrics listening").pipe(Effect.annotateLogs({ host: cfg.host, port }))

  return {
    enabled: true,
    request,
    connections: (d) => { activeConnections += d },
    tunnels: (d) => { activeTunnels += d },
    compressed,
    refused: (error) => {
      const r = refusalOf(error)
      if (r !== undefined) (r.kind === "blocked" ? blocked : rateLimited).add(r.rule, 1)
    },
    cliFinished: (outcome) => cliFinished.add(outcome, 1),
    serve,
    port,
    observePools: (read) => { pools = read },
    observeCache: (read) => { cacheStats = read },
    observeCliRunning: (read) => { cliRunning = read },
    observeReclaimer: (read) => { reclaimer = read }
  } satisfies MetricsHooks
})

export class Metrics extends Context.Service<Metrics, MetricsHooks>()("gatehouse/Metrics") {
  /** From `metrics:` config: the exporter and its listener, or no-op hooks when disabled. */
  static readonly layer = Layer.effect(
    Metrics,
    Effect.gen(function*() {
      const config = yield* Config
      return config.metrics.enabled ? yield* makeEnabled : disabled
    })
  )

  /** No-op hooks (services tested without metrics). */
  static readonly layerDisabled = Layer.succeed(Metrics, disabled)
}
