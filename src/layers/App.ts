/** Composition only: which implementation backs which service. */
import { Layer } from "effect"
import { Listener } from "../http/Listener.ts"
import { RequestPipeline } from "../http/RequestPipeline.ts"
import { AccessLog } from "../services/AccessLog.ts"
import type { Config } from "../services/Config.ts"
import { Lifecycle } from "../services/Lifecycle.ts"
import { Router } from "../services/Router.ts"
import { Upstream } from "../services/Upstream.ts"
import { LoggingLayer } from "./Logging.ts"

/** Everything the data plane needs besides Config and the access-log sink. */
const core = (accessLog: Layer.Layer<AccessLog, never, Config>) => {
  const services = Layer.mergeAll(Router.layer, Upstream.layer, accessLog, Lifecycle.layer)
  return Listener.layer.pipe(
    Layer.provideMerge(RequestPipeline.layer),
    Layer.provideMerge(services),
    Layer.provideMerge(LoggingLayer)
  )
}

/** Production: access log to stdout. Needs a Config layer. */
export const AppLayer = core(AccessLog.layer)

/** Tests: access-log lines collected into the given array. */
export const appLayerTest = (lines: Array<string>) => core(AccessLog.layerTest(lines))
