/** /admin/status: what this instance runs with (behind adminAuth.ts). Other /admin/* endpoints add here. */
import type { LoadedConfig } from "../services/Config.ts"
import type { LifecycleState } from "../services/Lifecycle.ts"
import type { ControlAnswer } from "./controlEndpoints.ts"

export const adminAnswer = (
  method: string,
  path: string,
  config: LoadedConfig,
  state: LifecycleState,
  uptimeMs: number
): ControlAnswer | undefined => {
  const q = path.indexOf("?")
  const p = q < 0 ? path : path.slice(0, q)
  if (p !== "/admin/status") return undefined
  if (method !== "GET" && method !== "HEAD") return { status: 405, body: { error: "method_not_allowed", detail: "use GET" } }
  const rl = config.security.rate_limiting
  return {
    status: 200,
    body: {
      status: state.draining ? "draining" : "running",
      uptime_s: Math.floor(uptimeMs / 1000),
      draining: state.draining,
      config_sources: config.sources.length === 0 ? ["embedded defaults"] : config.sources,
      tls: config.server.tls.enabled,
      rate_limiting: rl.enabled ? { backend: rl.backend, requests_per_second: rl.requests_per_second, burst: rl.burst } : false,
      proxy_auth: Object.keys(config.security.proxy_auth.users).length > 0,
      details: state.details
    }
  }
}
