/** Endpoints the proxy answers itself for origin-form requests: never routed upstream. */
import type { ServerResponse } from "node:http"
import type { LifecycleState } from "../services/Lifecycle.ts"

/** A control endpoint's answer; a 405 names what the endpoint accepts in `allow` (default GET, HEAD). */
export type ControlAnswer = { readonly status: number; readonly body: unknown; readonly allow?: string }

const json = (status: number, body: unknown): ControlAnswer => ({ status, body })

/**
 * Returns the answer for a control path, or undefined when the path is not a control endpoint.
 * `lifecycle` is read only for a health path (every origin-form request passes through here).
 */
export const controlAnswer = (method: string, path: string, lifecycle: () => LifecycleState): ControlAnswer | undefined => {
  if (!path.startsWith("/health/")) return undefined
  const state = lifecycle()
  const q = path.indexOf("?")
  const p = q < 0 ? path : path.slice(0, q)
  if (method !== "GET" && method !== "HEAD") {
    return p === "/health/liveness" || p === "/health/readiness" || p === "/health/startup"
      ? json(405, { error: "method_not_allowed", detail: "use GET" })
      : undefined
  }
  switch (p) {
    case "/health/liveness":
      return json(200, { status: "up" })
    case "/health/readiness": {
      const ready = state.started && state.listening && !state.draining
      return json(ready ? 200 : 503, {
        status: ready ? "ready" : "not_ready",
        checks: { listening: state.listening, draining: state.draining, started: state.started },
        ...(Object.keys(state.details).length > 0 ? { details: state.details } : {})
      })
    }
    case "/health/startup":
      return json(state.started ? 200 : 503, { status: state.started ? "started" : "starting" })
    default:
      return undefined
  }
}

/** Writes the answer; returns the body bytes sent (for the access log). */
export const writeControl = (res: ServerResponse, answer: ControlAnswer, method: string): number => {
  const body = JSON.stringify(answer.body) + "\n"
  const length = Buffer.byteLength(body)
  res.writeHead(answer.status, {
    "content-type": "application/json",
    "content-length": length,
    "cache-control": "no-store",
    ...(answer.status === 405 ? { allow: answer.allow ?? "GET, HEAD" } : {})
  })
  if (method === "HEAD") {
    res.end()
    return 0
  }
  res.end(body)
  return length
}
