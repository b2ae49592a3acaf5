import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaIssue from "effect/SchemaIssue"
import { parseDurationMs, parseSizeBytes } from "../units.ts"

const StringOrNumber = Schema.Union([Schema.String, Schema.Number])

const unitSchema = (parse: (s: string | number) => number | undefined, expected: string) =>
  StringOrNumber.pipe(
    Schema.decodeTo(Schema.Number, {
      decode: SchemaGetter.transformEffect((input: string | number, options) => {
        const out = parse(input)
        return out === undefined
          ? Effect.fail(new SchemaIssue.InvalidValue({ message: `expected ${expected}` }, options as never))
          : Effect.succeed(out)
      }),
      encode: SchemaGetter.transform((n: number) => n)
    })
  )

/** A duration in config ("30s", "2m", "250ms"; a bare number is seconds), decoded to milliseconds. */
export const DurationMs = unitSchema(parseDurationMs, `a duration such as "30s", "2m" or "250ms"`)
/** A size in config ("10MB", "512KB"; a bare number is bytes), decoded to bytes. */
export const SizeBytes = unitSchema(parseSizeBytes, `a size such as "10MB", "512KB" or a number of bytes`)

/**
 * The longest duration a timer-backed key takes. A Node.js timer cannot wait 2^31 ms (~24.8 days)
 * or more: it is cut short with a TimeoutOverflowWarning. 24 days stays below that with room for
 * what Node adds itself (the HTTP server arms `keepAliveTimeout` + 1 s).
 */
export const MAX_TIMER_MS = 24 * 86_400_000

/** A duration that arms a timer (timeouts, grace periods): as `DurationMs`, at most `MAX_TIMER_MS`, refused beyond. */
export const TimerMs = DurationMs.pipe(
  Schema.check(Schema.isLessThanOrEqualTo(MAX_TIMER_MS, {
    message: `expected a duration of at most 24d (${MAX_TIMER_MS}ms; Node.js timers cannot wait 2^31 ms, about 24.8 days)`
  }))
)
