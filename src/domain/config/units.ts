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
