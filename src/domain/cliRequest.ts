/**
 * The POST /cli/execute request body (issue 3), validated with a Schema: types, lengths and the
 * number of args. A failure names the field path ("args.2: ...") for the 400 answer.
 */
import { timingSafeEqual, createHash } from "node:crypto"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"

export const MAX_COMMAND_CHARS = 4096
export const MAX_ARGS = 256
export const MAX_ARG_CHARS = 32_768

const NoNul = Schema.isPattern(/^[^\0]*$/, { message: "must not contain NUL characters" })

export const CliExecRequest = Schema.Struct({
  command: Schema.String.pipe(
    Schema.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_COMMAND_CHARS), NoNul)
  ),
  args: Schema.optionalKey(
    Schema.Array(Schema.String.pipe(Schema.check(Schema.isMaxLength(MAX_ARG_CHARS), NoNul))).pipe(
      Schema.check(Schema.isMaxLength(MAX_ARGS))
    )
  ),
  /** Text written to the process's stdin, then stdin is closed. Byte size bounded by cli.max_stdin_bytes. */
  stdin: Schema.optionalKey(Schema.String),
  /** true (default): chunked NDJSON events as they happen; false: one JSON document at the end. */
  stream: Schema.optionalKey(Schema.Boolean)
})
export type CliExecRequest = typeof CliExecRequest.Type

export interface FieldError {
  readonly path: string
  readonly message: string
}

const decode = Schema.decodeUnknownResult(CliExecRequest, { onExcessProperty: "error" })
const format = SchemaIssue.makeFormatterStandardSchemaV1()

const pathOf = (path: ReadonlyArray<unknown> | undefined): string =>
  (path ?? []).map((p) => String(typeof p === "object" && p !== null && "key" in p ? (p as { key: unknown }).key : p)).join(".")

/** JSON text → a valid request, or the first problem with its field path ("" = the body itself). */
export const parseCliRequest = (text: string): Result.Result<CliExecRequest, FieldError> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Result.fail({ path: "", message: `body is not valid JSON (${e instanceof Error ? e.message : String(e)})` })
  }
  const decoded = decode(json)
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const first = format(decoded.failure.issue).issues[0]
  return Result.fail({ path: pathOf(first?.path), message: first?.message ?? "invalid body" })
}

/** sha256 of a token, so the comparison below is over equal lengths whatever the client sent. */
export const tokenDigest = (token: string): Buffer => createHash("sha256").update(token, "utf8").digest()

/** `Authorization: Bearer <token>` against the configured token's digest, in constant time. */
export const bearerMatches = (header: string | undefined, expected: Buffer): boolean => {
  if (header === undefined) return false
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  const given = tokenDigest(m?.[1] ?? "")
  return timingSafeEqual(given, expected) && m !== null
}

/** 127.0.0.0/8, ::1, and their IPv4-mapped forms (already normalised by the pipeline). */
export const isLoopback = (ip: string): boolean => ip === "::1" || ip.startsWith("127.")
