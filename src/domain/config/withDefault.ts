import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/** A config key that may be absent: decodes the given encoded default instead. Every key has one. */
export const withDefault = <S extends Schema.Top>(s: S, value: S["Encoded"]) =>
  s.pipe(Schema.withDecodingDefault(Effect.succeed(value)))
