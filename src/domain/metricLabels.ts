/**
 * Bounded metric labels: a request never adds a label value that is not from a fixed set or
 * from configuration (no raw URLs, hosts or client addresses), and free-form families are capped.
 */
import { KILLED_REASONS } from "./cliEvents.ts"

const METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"])
const CLASSES = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"] as const

/** A refusal worth counting by rule: 403 by a filter/policy rule, 429/503 by rate limiting. */
export const refusalOf = (error: { readonly _tag: string; readonly rule?: string }): { readonly kind: "blocked" | "rate_limited"; readonly rule: string } | undefined => {
  switch (error._tag) {
    case "Blocked":
    case "Forbidden":
      return { kind: "blocked", rule: ruleKey(error.rule ?? "") }
    case "RateLimited":
      return { kind: "rate_limited", rule: "security.rate_limiting" }
    case "RateLimiterUnavailable":
      return { kind: "rate_limited", rule: "security.rate_limiting.on_backend_error" }
    default:
      return undefined
  }
}

/**
 * The config key part of a rule ("security.filtering.domains.blocked: *.evil.example" → the key and
 * the configured pattern are both from config, so both stay; anything after 100 characters is cut).
 */
const ruleKey = (rule: string): string => (rule === "" ? "unknown" : rule.length > 100 ? rule.slice(0, 100) : rule)

/** How a CLI process ended, as a bounded label: killed reason, signal, or exit status zero / non-zero. */
export const cliOutcome = (cli: { readonly exit_code: number | null; readonly signal: string | null; readonly killed: string | null }): string =>
  cli.killed !== null ? (CLI_KILLED.has(cli.killed) ? cli.killed : "killed")
    : cli.signal !== null ? "signal"
    : cli.exit_code === 0 ? "exit_zero"
    : cli.exit_code === null ? "unknown"
    : "exit_nonzero"
const CLI_KILLED: ReadonlySet<string> = new Set(KILLED_REASONS)

export const methodLabel = (method: string): string => (METHODS.has(method) ? method : "OTHER")

export const statusClassLabel = (status: number): string =>
  status >= 100 && status < 600 ? CLASSES[Math.floor(status / 100)]! : "none"

/** Counters keyed by one label whose values come from config (rule names): at most `cap` values, then "other". */
export class LabelledCounter {
  readonly values = new Map<string, number>()
  private readonly cap: number
  constructor(cap: number) {
    this.cap = cap
  }
  add(label: string, n: number): void {
    const cur = this.values.get(label)
    if (cur !== undefined) this.values.set(label, cur + n)
    else if (this.values.size < this.cap) this.values.set(label, n)
    else this.values.set("other", (this.values.get("other") ?? 0) + n)
  }
}

/** Cumulative explicit-bucket histogram (upper bounds inclusive, like OpenTelemetry's). */
export class FixedHistogram {
  readonly counts: Array<number>
  sum = 0
  count = 0
  min = Infinity
  max = -Infinity
  readonly boundaries: ReadonlyArray<number>
  constructor(boundaries: ReadonlyArray<number>) {
    this.boundaries = boundaries
    this.counts = new Array<number>(boundaries.length + 1).fill(0)
  }
  record(value: number): void {
    const b = this.boundaries
    let i = 0
    while (i < b.length && value > b[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }
}

/** Seconds: 1 ms … 60 s (request and upstream durations). */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** Compressed size / original size. */
export const RATIO_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]
