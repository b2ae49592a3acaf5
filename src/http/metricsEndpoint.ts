/** GET /metrics on the proxy's own port (origin-form only), answered in the control phase. */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { MetricsHooks } from "../services/Metrics.ts"

/** "/metrics" or "/metrics?…", GET or HEAD. */
export const isMetricsRequest = (method: string, path: string): boolean =>
  path.startsWith("/metrics") && (path.length === 8 || path.charCodeAt(8) === 63 /* ? */) && (method === "GET" || method === "HEAD")

/** The handler for the main port, or undefined when metrics are off or `metrics.on_main_port` is false. */
export const mainPortMetrics = (metrics: MetricsHooks, onMainPort: boolean): ((req: IncomingMessage, res: ServerResponse) => void) | undefined =>
  onMainPort ? metrics.serve : undefined
