/** The small per-request record that travels through the phases and ends up in the access log. */
export interface RequestContext {
  readonly id: string
  readonly startNs: bigint
  readonly clientIp: string
  readonly method: string
  readonly url: string
  kind: "forward" | "reverse" | "control" | "connect" | "invalid"
  upstream: string
  status: number
  bytesIn: number
  bytesOut: number
  outcome: string
}

export const newRequestContext = (id: string, startNs: bigint, clientIp: string, method: string, url: string): RequestContext => ({
  id,
  startNs,
  clientIp,
  method,
  url,
  kind: "invalid",
  upstream: "",
  status: 0,
  bytesIn: 0,
  bytesOut: 0,
  outcome: "ok"
})
