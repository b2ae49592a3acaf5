/** GET /metrics on the proxy's own port (origin-form only), answered in the control phase. */
import * as Effect from "effect/Effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { RequestContext } from "../domain/RequestContext.ts"
import type { MetricsHooks } from "../services/Metrics.ts"

/** "/metrics" or "/metrics?…", GET or HEAD. */
export const isMetricsRequest = (method: string, path: string): boolean =>
  path.startsWith("/metrics") && (path.length === 8 || path.charCodeAt(8) === 63 /* ? */) && (method === "GET" || method === "HEAD")

/**
 * The control-phase step for the main port, or undefined when metrics are off or `metrics.on_main_port`
 * is false. The text is collected asynchronously: the step completes once the answer is written, with
 * its status and body bytes in `ctx`, so the request's access-log line and metrics come after the
 * answer and count its bytes (like every other answer).
 */
export const metricsAnswer = (
  metrics: MetricsHooks,
  onMainPort: boolean
): ((req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => Effect.Effect<void>) | undefined => {
  const serve = onMainPort ? metrics.serve : undefined
  if (serve === undefined) return undefined
  return (req, res, ctx) =>
    Effect.map(Effect.promise(() => serve(req, res)), (bytes) => {
      ctx.status = res.statusCode
      ctx.bytesOut = bytes
    })
}

