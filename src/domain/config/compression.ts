import * as Schema from "effect/Schema"
import { IntBetween, SizeBytes } from "./units.ts"
import { withDefault } from "./withDefault.ts"

/** Content codings Gatehouse can produce (RFC 9110 §8.4.1; zstd: RFC 8878). */
export const CompressionAlgorithm = Schema.Literals(["zstd", "br", "gzip"])
export type CompressionAlgorithm = typeof CompressionAlgorithm.Type

/** "text/html", "text/*" or "*+json" (any structured-syntax suffix). */
export const MediaTypePattern = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^(\*\+[a-z0-9.-]+|[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+))$/, {
    message: `expected a lowercase media type such as "text/html", "text/*" or "*+json"`
  }))
)

const level = (min: number, max: number) => IntBetween(min, max, "a level")

export const DEFAULT_COMPRESSIBLE_TYPES = [
  "text/html", "text/plain", "text/css", "text/csv", "text/xml", "text/javascript", "text/markdown",
  "application/javascript", "application/json", "application/xml", "application/wasm",
  "application/x-javascript", "application/x-ndjson", "image/svg+xml", "*+json", "*+xml"
]

/**
 * The `compression:` section. Off by default: a transparent proxy keeps the origin's bytes unless
 * told otherwise (like nginx's `gzip off`).
 */
export const CompressionSection = Schema.Struct({
  enabled: withDefault(Schema.Boolean, false),
  /** Responses whose Content-Length is below this are sent as they are (chunked ones are compressed). */
  min_size: withDefault(SizeBytes, "1KB"),
  types: withDefault(Schema.Array(MediaTypePattern), DEFAULT_COMPRESSIBLE_TYPES),
  /** Codings offered, in the server's order of preference when the client's q-values tie. */
  algorithms: withDefault(Schema.Array(CompressionAlgorithm), ["zstd", "br", "gzip"]),
  gzip_level: withDefault(level(1, 9), 6),
  brotli_quality: withDefault(level(0, 11), 4),
  zstd_level: withDefault(level(1, 19), 3)
})
export type CompressionSection = typeof CompressionSection.Type
