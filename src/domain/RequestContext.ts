/** The small per-request record that travels through the phases and ends up in the access log. */
export interface RequestContext {
  readonly id: string
  readonly startNs: bigint
  readonly clientIp: string
  readonly method: string
  readonly url: string
  kind: "forward" | "reverse" | "control" | "connect" | "invalid"
  /** The upstream contacted ("" when none was, e.g. a cache hit). */
  upstream: string
  /** A reverse-proxied request's backend even when the cache answered it (the metrics' route label); "" otherwise. */
  backend: string
  status: number
  bytesIn: number
  bytesOut: number
  outcome: string
  /** Time spent in the upstream exchange (0n: none), for the upstream duration metric. */
  upstreamNs: bigint
  /** Trace id of the request's span when tracing is on ("" otherwise), for the access log. */
  traceId: string
  /** Spans are recorded for this request (tracing on and the head-sampling decision said yes). */
  traced: boolean
  /** Set by POST /cli/execute (issue 3): what ran and how it ended, for the access log. */
  cli?: CliAccess
}

export interface CliAccess {
  readonly command: string
  readonly args: number
  readonly pid: number
  readonly exit_code: number | null
  readonly signal: string | null
  /** timeout | max_output_bytes | interrupted (client gone, shutdown), or null when the process ended by itself. */
  readonly killed: string | null
}

export const newRequestContext = (id: string, startNs: bigint, clientIp: string, method: string, url: string): RequestContext => ({
  id,
  startNs,
  clientIp,
  method,
  url,
  kind: "invalid",
  upstream: "",
  backend: "",
  status: 0,
  bytesIn: 0,
  bytesOut: 0,
  outcome: "ok",
  upstreamNs: 0n,
  traceId: "",
  traced: false
})
