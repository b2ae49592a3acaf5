/** Composition only: which implementation backs which service. */
import * as Layer from "effect/Layer"
import { Listener } from "../http/Listener.ts"
import { RequestPipeline } from "../http/RequestPipeline.ts"
import { AccessLog } from "../services/AccessLog.ts"
import { Cache } from "../services/Cache.ts"
import { CliRunner } from "../services/CliRunner.ts"
import { Compression } from "../services/Compression.ts"
import type { Config } from "../services/Config.ts"
import { DestinationGuard } from "../services/DestinationGuard.ts"
import { Filter } from "../services/Filter.ts"
import { Lifecycle } from "../services/Lifecycle.ts"
import { Metrics } from "../services/Metrics.ts"
import { ProxyAuth } from "../services/ProxyAuth.ts"
import { RateLimiter } from "../services/RateLimiter.ts"
import { Reclaimer } from "../services/Reclaimer.ts"
import { Router } from "../services/Router.ts"
import { Tracing } from "../services/Tracing.ts"
import { Upstream } from "../services/Upstream.ts"
import { LoggingLayer } from "./Logging.ts"

/** Metrics (hooks any service may call), tracing (Effect's Tracer when on) and compression. */
const observability = Layer.mergeAll(Compression.layer, Tracing.layer).pipe(Layer.provideMerge(Metrics.layer))

/** Rate limiting (memory or Redis, by config), proxy auth, SSRF guard, the cache; they read Config and Lifecycle. */
const access = Layer.mergeAll(RateLimiter.layer, ProxyAuth.layer, DestinationGuard.layer, Cache.layer)

/** Everything the data plane needs besides Config and the access-log sink. */
const core = (accessLog: Layer.Layer<AccessLog, never, Config>) => {
  const services = Layer.mergeAll(Router.layer, Upstream.layer, accessLog, Lifecycle.layer, CliRunner.layer, Filter.layer, Reclaimer.layer)
    .pipe(Layer.provideMerge(observability))
  return Listener.layer.pipe(
    Layer.provideMerge(RequestPipeline.layer),
    Layer.provideMerge(access),
    Layer.provideMerge(services),
    Layer.provideMerge(LoggingLayer)
  )
}

/** Production: access log to stdout. Needs a Config layer. */
export const AppLayer = core(AccessLog.layer)

/** Tests: access-log lines collected into the given array. */
export const appLayerTest = (lines: Array<string>) => core(AccessLog.layerTest(lines))
