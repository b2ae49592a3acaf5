/**
 * The POST /cli/execute request body (issue 3), validated with a Schema: types, lengths and the
 * number of args. A failure names the field path ("args.2: ...") for the 400 answer.
 *
 * Size limits are per part, in UTF-8 bytes as the program receives them: ≤ 256 args of ≤ 32 KiB each,
 * stdin ≤ cli.max_stdin_bytes. The body itself may be up to `bodyCapFor` (the largest JSON text a
 * request within those limits can take); while it streams in, `makePartMeter` measures each part
 * decoded, so a part over its limit is refused by name as soon as it crosses it.
 */
import { timingSafeEqual, createHash } from "node:crypto"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"

export const MAX_COMMAND_CHARS = 4096
export const MAX_ARGS = 256
/** Per argument, in UTF-8 bytes. */
export const MAX_ARG_BYTES = 32_768

const NoNul = Schema.isPattern(/^[^\0]*$/, { message: "must not contain NUL characters" })

const argTooLong = `exceeds ${MAX_ARG_BYTES} bytes`
const tooManyArgs = `more than ${MAX_ARGS} arguments`
const stdinTooLong = (max: number): string => `exceeds ${max} bytes (cli.max_stdin_bytes)`

export const CliExecRequest = Schema.Struct({
  command: Schema.String.pipe(
    Schema.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_COMMAND_CHARS), NoNul)
  ),
  args: Schema.optionalKey(
    Schema.Array(
      Schema.String.pipe(Schema.check(Schema.makeFilter((a: string) => Buffer.byteLength(a, "utf8") <= MAX_ARG_BYTES || argTooLong), NoNul))
    ).pipe(
      Schema.check(Schema.makeFilter((args: ReadonlyArray<string>) => args.length <= MAX_ARGS || tooManyArgs))
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
export const parseCliRequest = (text: string, maxStdinBytes: number): Result.Result<CliExecRequest, FieldError> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Result.fail({ path: "", message: `body is not valid JSON (${e instanceof Error ? e.message : String(e)})` })
  }
  const decoded = decode(json)
  if (Result.isSuccess(decoded)) {
    const stdin = decoded.success.stdin
    return stdin !== undefined && Buffer.byteLength(stdin, "utf8") > maxStdinBytes
      ? Result.fail({ path: "stdin", message: stdinTooLong(maxStdinBytes) })
      : Result.succeed(decoded.success)
  }
  const first = format(decoded.failure.issue).issues[0]
  return Result.fail({ path: pathOf(first?.path), message: first?.message ?? "invalid body" })
}

/** Bytes one character can take as JSON text: a control character is written `\u0001`. */
const ESCAPED_MAX = 6
/** Keys, quotes, commas, `"stream":false`, and whitespace for pretty-printed bodies. */
const STRUCTURE_BYTES = MAX_ARGS * 8 + 64 * 1024

/**
 * The largest body a request within the documented limits can take: every part at its limit and
 * written with the longest JSON escapes (6 bytes per byte or UTF-16 unit). Larger → 413.
 */
export const bodyCapFor = (maxStdinBytes: number): number =>
  ESCAPED_MAX * (MAX_COMMAND_CHARS + MAX_ARGS * MAX_ARG_BYTES + maxStdinBytes) + STRUCTURE_BYTES

/** UTF-8 bytes of the UTF-16 unit a `\uXXXX` escape names (a surrogate pair's halves: 2 + 2). */
const escapedBytes = (unit: number): number =>
  unit < 0x80 ? 1 : unit < 0x800 ? 2 : unit >= 0xd800 && unit <= 0xdfff ? 2 : 3

const hexValue = (byte: number): number =>
  byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x66 ? (byte | 0x20) - 0x57 : 0

/** A container the meter is inside: the top-level object, the `args` array, or anything else. */
interface Level {
  readonly kind: "object" | "array"
  /** object: the next string is a key (after `{` or `,`); the last key read. */
  expectKey: boolean
  key: string
  /** array: elements begun so far, and whether the next value begins a new one (after `[` or `,`). */
  elements: number
  pending: boolean
  readonly isArgs: boolean
}

/** What the string being read is: a key of the top-level object, an argument, stdin, or other. */
type Role = "key" | "arg" | "stdin" | "other"

/** Longest key worth remembering: only "args" and "stdin" matter. */
const KEY_CHARS = 8

/**
 * Measures the parts of a body as its bytes arrive, decoded (escapes count as the bytes they
 * stand for), without building it: the number of args, each arg's bytes, stdin's bytes. The first
 * part over its limit comes back as a FieldError naming it. Only sizes are judged here: a body that
 * is not valid JSON, or has other problems, is left to `parseCliRequest` once it is complete
 * (which checks the same limits again on the decoded values).
 */
export const makePartMeter = (maxStdinBytes: number) => {
  const stack: Array<Level> = []
  let inString = false
  let role: Role = "other"
  let size = 0
  let key = ""
  /** 0: plain; 1: after a backslash; 2-5: reading the 4 hex digits of \u. */
  let escape = 0
  let unit = 0
  let failed: FieldError | undefined

  const top = (): Level | undefined => stack[stack.length - 1]
  const isTopObject = (level: Level | undefined): level is Level => level !== undefined && level.kind === "object" && stack.length === 1

  /** A value begins: in an array, it may be a new element. */
  const valueBegins = (): FieldError | undefined => {
    const level = top()
    if (level === undefined || level.kind !== "array" || !level.pending) return undefined
    level.pending = false
    level.elements++
    return level.isArgs && level.elements > MAX_ARGS ? { path: "args", message: tooManyArgs } : undefined
  }

  /** `n` more decoded bytes of the current string (`char`: the UTF-16 unit, for keys). */
  const count = (n: number, char: number): FieldError | undefined => {
    switch (role) {
      case "key":
        if (key.length <= KEY_CHARS) key += String.fromCharCode(char)
        return undefined
      case "arg":
        size += n
        return size > MAX_ARG_BYTES ? { path: `args.${top()!.elements - 1}`, message: argTooLong } : undefined
      case "stdin":
        size += n
        return size > maxStdinBytes ? { path: "stdin", message: stdinTooLong(maxStdinBytes) } : undefined
      case "other":
        return undefined
    }
  }

  const stringBegins = (): FieldError | undefined => {
    const level = top()
    inString = true
    size = 0
    if (level !== undefined && level.kind === "object" && level.expectKey) {
      role = isTopObject(level) ? "key" : "other"
      key = ""
      return undefined
    }
    role = level === undefined ? "other"
      : level.isArgs ? "arg"
      : isTopObject(level) && level.key === "stdin" ? "stdin"
      : "other"
    return valueBegins()
  }

  const stringEnds = (): undefined => {
    inString = false
    if (role === "key") top()!.key = key
    role = "other"
    return undefined
  }

  /** One byte inside a string, after a backslash or in a \u escape. */
  const escaped = (byte: number): FieldError | undefined => {
    if (escape === 1) {
      if (byte === 0x75 /* u */) {
        escape = 2
        unit = 0
        return undefined
      }
      escape = 0
      return count(1, 0x5c) // \n, \t, \", \\, \/ ... are one byte each (the key is then none we track)
    }
    unit = unit * 16 + hexValue(byte)
    if (escape++ < 5) return undefined
    escape = 0
    return count(escapedBytes(unit), unit)
  }

  /** One byte outside strings: structure, or the start of a number or literal. */
  const structural = (byte: number): FieldError | undefined => {
    switch (byte) {
      case 0x20: case 0x09: case 0x0a: case 0x0d:
        return undefined
      case 0x22 /* " */:
        return stringBegins()
      case 0x7b /* { */:
      case 0x5b /* [ */: {
        const problem = valueBegins()
        const parent = top()
        const isArgs = byte === 0x5b && isTopObject(parent) && parent.key === "args"
        stack.push({ kind: byte === 0x7b ? "object" : "array", expectKey: true, key: "", elements: 0, pending: true, isArgs })
        return problem
      }
      case 0x7d /* } */:
      case 0x5d /* ] */:
        stack.pop()
        return undefined
      case 0x3a /* : */: {
        const level = top()
        if (level !== undefined) level.expectKey = false
        return undefined
      }
      case 0x2c /* , */: {
        const level = top()
        if (level !== undefined) {
          level.expectKey = true
          level.pending = true
        }
        return undefined
      }
      default:
        return valueBegins() // a number or a literal (true, false, null)
    }
  }

  /** The next bytes of the body; the first part over its limit (and from then on, that one). */
  const write = (chunk: Uint8Array): FieldError | undefined => {
    if (failed !== undefined) return failed
    let i = 0
    while (i < chunk.length) {
      let problem: FieldError | undefined
      if (!inString) problem = structural(chunk[i++]!)
      else if (escape !== 0) problem = escaped(chunk[i++]!)
      else {
        // a run of plain string bytes (UTF-8 as sent: one byte each), up to a quote or a backslash
        const from = i
        let byte = chunk[i]!
        while (byte !== 0x22 && byte !== 0x5c && role !== "key" && ++i < chunk.length) byte = chunk[i]!
        if (i > from) problem = count(i - from, 0)
        else {
          i++
          if (byte === 0x22) problem = stringEnds()
          else if (byte === 0x5c) escape = 1
          else problem = count(1, byte)
        }
      }
      if (problem !== undefined) return (failed = problem)
    }
    return undefined
  }

  return { write }
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
