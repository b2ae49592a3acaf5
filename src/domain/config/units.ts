/**
 * Number-valued config keys: counts, ports, rates, durations and sizes. Each key is checked whole by
 * one schema whose every refusal states what is allowed: a value of the wrong type ("abc" from an env
 * var, `true`), a fraction where a count is meant, NaN or ±Infinity (YAML `.nan` / `.inf`,
 * `RATE_LIMIT_RPS=Infinity`) and a value out of range all get the same message, with the range. (A
 * plain `Schema.Number` key answers a string with "expected number | undefined", the encoded type of
 * a key that has a default.) The encoded side takes any value so that the type check is made here too.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaIssue from "effect/SchemaIssue"
import { parseDurationMs, parseSizeBytes } from "../units.ts"

/** `read` turns the input into a number (undefined: not one); `ok` bounds it; `expected` follows "expected " in the message. */
const numberKey = (read: (input: unknown) => number | undefined, ok: (n: number) => boolean, expected: string) =>
  Schema.Unknown.pipe(
    Schema.decodeTo(Schema.Number, {
      decode: SchemaGetter.transformEffect((input: unknown) => {
        const n = read(input)
        return n !== undefined && ok(n)
          ? Effect.succeed(n)
          : Effect.fail(new SchemaIssue.InvalidValue({ message: `expected ${expected}` }, input))
      }),
      encode: SchemaGetter.transform((n: number) => n)
    })
  )

const plainNumber = (input: unknown): number | undefined => (typeof input === "number" ? input : undefined)
const durationOrSize = (parse: (s: string | number) => number | undefined) => (input: unknown): number | undefined =>
  typeof input === "string" || typeof input === "number" ? parse(input) : undefined

/** A whole number from `min` to `max` (a count, a port, a level); `what` names it in the message. */
export const IntBetween = (min: number, max: number, what = "an integer", note = "") =>
  numberKey(plainNumber, (n) => Number.isSafeInteger(n) && n >= min && n <= max, `${what} from ${min} to ${max}${note}`)

/** A number from `min` to `max`, fractions allowed (a rate, a ratio). */
export const NumberBetween = (min: number, max: number, what = "a number", note = "") =>
  numberKey(plainNumber, (n) => n >= min && n <= max, `${what} from ${min} to ${max}${note}`)

/**
 * The longest duration a timer-backed key takes. A Node.js timer cannot wait 2^31 ms (~24.8 days)
 * or more: it is cut short with a TimeoutOverflowWarning. 24 days stays below that with room for
 * what Node adds itself (the HTTP server arms `keepAliveTimeout` + 1 s).
 */
export const MAX_TIMER_MS = 24 * 86_400_000

/**
 * The longest freshness lifetime (`cache.default_ttl`, no timer): 2^31 seconds (~68 years), the value
 * RFC 9111 §1.2.2 has a cache use for any larger delta-seconds.
 */
export const MAX_LIFETIME_MS = 2 ** 31 * 1000

const DURATION = `such as "30s", "2m" or "250ms" (a bare number is seconds)`
const TIMER_LIMIT = `Node.js timers cannot wait 2^31 ms, about 24.8 days`
const readDuration = durationOrSize(parseDurationMs)

/**
 * A timeout (connect, read, write, idle, process, Redis command, pooled keep-alive): 1ms to 24d.
 * 0 is refused, not given a meaning: consumers disagree on it (Node's `headersTimeout: 0` and undici's
 * `connect.timeout: 0` mean "never", `setTimeout(0)` means "at once"), and every one of these timeouts
 * is a bound a proxy must keep (a head read without one is open to slowloris). 24d is the longest.
 */
export const TimeoutMs = numberKey(
  readDuration,
  (ms) => ms >= 1 && ms <= MAX_TIMER_MS,
  `a duration from 1ms to 24d, ${DURATION}; not 0: this timeout cannot be turned off (${TIMER_LIMIT})`
)

/** A grace period (`shutdown_grace`, `kill_grace`): 0 (none: act at once) to 24d. */
export const GraceMs = numberKey(
  readDuration,
  (ms) => ms >= 0 && ms <= MAX_TIMER_MS,
  `a duration from 0 (no grace: at once) to 24d, ${DURATION} (${TIMER_LIMIT})`
)

/** A freshness lifetime (`cache.default_ttl`): 0 (off) to 2^31 s, in milliseconds. */
export const LifetimeMs = numberKey(
  readDuration,
  (ms) => ms >= 0 && ms <= MAX_LIFETIME_MS,
  `a duration from 0 (off) to 24855d, ${DURATION} (2^31 s, the RFC 9111 §1.2.2 maximum)`
)

/**
 * A size ("10MB", "512KB"; a bare number is bytes), decoded to bytes: 0 to 2^53-1 (~8 PiB). Past
 * that a byte count is no longer an exact integer in JavaScript, so the limits compared with counted
 * bytes would silently be wrong.
 */
export const SizeBytes = numberKey(
  durationOrSize(parseSizeBytes),
  (n) => n <= Number.MAX_SAFE_INTEGER,
  `a size such as "10MB", "512KB" or a number of bytes, from 0 to 2^53-1 bytes (about 8 PiB)`
)
