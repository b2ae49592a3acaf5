import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { CliAccess, RequestContext } from "../domain/RequestContext.ts"
import { redactUserinfo } from "../domain/redactUserinfo.ts"
import { Config } from "./Config.ts"
import { isoSecond, jsonLineWriter, msText } from "./accessLogBytes.ts"

export { msText }

/** One line per request or tunnel, written when the request's fiber exits, whatever the outcome. */
export interface AccessEntry {
  readonly request_id: string
  readonly client_ip: string
  readonly method: string
  /** Request-target as received, or the CONNECT authority. */
  readonly url: string
  readonly status: number
  readonly bytes_in: number
  readonly bytes_out: number
  readonly duration_ms: number
  readonly upstream: string
  /** ok | early answer tag | error tag | client_abort | interrupted */
  readonly outcome: string
  readonly kind: string
  /** POST /cli/execute only: command, args count, pid, exit code, signal, killed reason. */
  readonly cli?: CliAccess | undefined
  /** The request's trace id when tracing is on (W3C, 32 hex digits). */
  readonly trace_id?: string | undefined
}

/** The access-log line of a finished request or tunnel, from its context (`kind` may name the path, e.g. "upgrade"). */
export const accessEntry = (ctx: RequestContext, durationNs: bigint, kind: string = ctx.kind): AccessEntry => ({
  request_id: ctx.id,
  client_ip: ctx.clientIp,
  method: ctx.method,
  // (origin-form, nearly every line, is taken as it is: only an absolute-form target can hold userinfo)
  url: ctx.url.charCodeAt(0) === 47 /* / */ ? ctx.url : redactUserinfo(ctx.url),
  status: ctx.status,
  bytes_in: ctx.bytesIn,
  bytes_out: ctx.bytesOut,
  // microsecond resolution (like nginx's millisecond $request_time, finer)
  duration_ms: Math.round(Number(durationNs) / 1e3) / 1e3,
  upstream: ctx.upstream,
  outcome: ctx.outcome,
  kind,
  // (absent or undefined alike: the writers leave an undefined field out, as JSON.stringify does)
  cli: ctx.cli,
  trace_id: ctx.traceId === "" ? undefined : ctx.traceId
})

/**
 * A field of the text line escaped as nginx escapes its access log: `"`, `\` and every byte outside
 * printable ASCII as `\xHH`, so a line stays one line a reader can split (no raw control bytes or
 * terminal escape sequences, no `"` closing the quoted request early). Request bytes arrive as
 * latin1 text (one character per byte, as Node's parser gives them), so each character up to U+00FF is
 * one byte; a character above it (from a UTF-8 JSON body, e.g. a CLI command) is written as the bytes
 * of its UTF-8. Outside quotes (`space` false) a space is escaped too, so each `key=value` stays one word.
 * A loop over the characters, no regular expression: most fields have nothing to escape.
 */
export const textField = (s: string, space: boolean): string => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c || (c === 0x20 && !space)) return escapeFrom(s, i, space)
  }
  return s
}

const hex = (b: number): string => `\\x${b < 16 ? "0" : ""}${b.toString(16).toUpperCase()}`

const escapeFrom = (s: string, from: number, space: boolean): string => {
  let out = s.slice(0, from)
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff) {
      const cp = s.codePointAt(i)!
      if (cp > 0xffff) i++
      for (const b of Buffer.from(String.fromCodePoint(cp), "utf8")) out += hex(b)
    } else if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c || (c === 0x20 && !space)) out += hex(c)
    else out += s[i]
  }
  return out
}

/** A CLI command is Unicode text (from the JSON body): escaped as the bytes of its UTF-8. */
const utf8Field = (s: string): string => textField(Buffer.from(s, "utf8").toString("latin1"), false)

export const textLine = (time: string, e: AccessEntry): string =>
  `${time} ${textField(e.client_ip, false)} "${textField(e.method, true)} ${textField(e.url, true)}" ${e.status} in=${e.bytes_in} out=${e.bytes_out} ` +
  `${e.duration_ms}ms upstream=${textField(e.upstream, false) || "-"} outcome=${textField(e.outcome, false)} kind=${textField(e.kind, false)} ` +
  `id=${textField(e.request_id, false)}` + (e.trace_id === undefined ? "" : ` trace=${textField(e.trace_id, false)}`) +
  (e.cli === undefined
    ? ""
    : ` cli=${utf8Field(e.cli.command)} args=${e.cli.args} exit=${e.cli.exit_code ?? e.cli.signal ?? "-"} killed=${e.cli.killed ?? "-"}`) + "\n"

/** Characters a JSON string must escape (and lone surrogates, which JSON.stringify escapes too). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/
const str = (s: string): string => NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`

/**
 * The JSON line, written out by hand: the same text as `JSON.stringify({time, type: "access", ...e})`
 * (same key order, undefined fields left out) at a fraction of the cost on the request path. Every
 * string field goes through `str`, which escapes only when needed (the request id, client address,
 * method and the proxy's own outcome/kind words never need it; the URL and upstream may).
 */
export const jsonLine = (time: string, e: AccessEntry): string =>
  `{"time":"${time}","type":"access","request_id":${str(e.request_id)},"client_ip":${str(e.client_ip)},` +
  `"method":${str(e.method)},"url":${str(e.url)},"status":${e.status},"bytes_in":${e.bytes_in},"bytes_out":${e.bytes_out},` +
  `"duration_ms":${msText(e.duration_ms)},"upstream":${str(e.upstream)},"outcome":${str(e.outcome)},"kind":${str(e.kind)}` +
  (e.cli === undefined ? "" : `,"cli":${JSON.stringify(e.cli)}`) +
  (e.trace_id === undefined ? "" : `,"trace_id":${str(e.trace_id)}`) + "}\n"

/**
 * ISO-8601 time of a millisecond (`new Date(ms).toISOString()`): the text up to the seconds is
 * remembered for the rest of its second, the milliseconds are written from digits.
 */
export const isoClock = () => {
  let second = Number.NaN
  let prefix = ""
  return (ms: number): string => {
    const s = Math.floor(ms / 1000)
    if (s !== second) {
      second = s
      prefix = isoSecond(s)
    }
    const frac = ms - s * 1000
    return `${prefix}${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}Z`
  }
}

/** Access-log buffering (AccessLog.layer): written when this many bytes wait, or this long after the first line. */
const FLUSH_BYTES = 65536
const FLUSH_MS = 100
/** Room for a full batch plus one more line of any usual size. */
const BUFFER_BYTES = FLUSH_BYTES + 16384

export class AccessLog extends Context.Service<AccessLog, {
  write(entry: AccessEntry): Effect.Effect<void>
  /** The same, from native callbacks (the request path's end runs outside any fiber). */
  log(entry: AccessEntry): void
}>()("gatehouse/AccessLog") {
  /**
   * Writes to a line sink; `format` and on/off come from `logging`. `direct`, when given, writes a JSON
   * line itself (given the epoch milliseconds of its time field) and says whether it did (the buffered
   * layer's byte writer); otherwise the text goes to `sink`.
   */
  static readonly make = (sink: (line: string) => void, direct?: (ms: number, entry: AccessEntry) => boolean) =>
    Layer.effect(
      AccessLog,
      Effect.gen(function*() {
        const { logging } = yield* Config
        // `logging.access_log` alone switches it (as nginx's access_log is apart from error_log's
        // level): `level: none` silences the application logs only
        if (!logging.access_log) return AccessLog.of({ write: () => Effect.void, log: () => {} })
        const format = logging.format === "json" ? jsonLine : textLine
        const clock = yield* Clock.Clock
        const iso = isoClock()
        const log = direct !== undefined && logging.format === "json"
          ? (entry: AccessEntry) => {
            const ms = clock.currentTimeMillisUnsafe()
            if (!direct(ms, entry)) sink(jsonLine(iso(ms), entry))
          }
          : (entry: AccessEntry) => sink(format(iso(clock.currentTimeMillisUnsafe()), entry))
        return AccessLog.of({ log, write: (entry) => Effect.sync(() => log(entry)) })
      })
    )

  /**
   * Production: lines to stdout, buffered like nginx's `access_log ... buffer=64k flush=100ms`: one
   * write(2) for all the lines of up to 100 ms instead of one per line or per event-loop turn (stdout
   * to a file or pipe is a synchronous write in Node). A buffer over 64 KiB is written at once; the
   * layer's finalizer writes what is left at shutdown (a process killed with SIGKILL loses at most
   * the last 100 ms of lines).
   */
  static readonly layer = Layer.unwrap(Effect.gen(function*() {
    // Each line is encoded into the buffer as it is logged (while its text is still in the CPU's
    // cache), so a write is one Buffer: no join of old strings, no encoding at write time.
    let buf = Buffer.allocUnsafeSlow(BUFFER_BYTES)
    let used = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    const flush = () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      if (used === 0) return
      const out = buf.subarray(0, used)
      used = 0
      process.stdout.write(out)
      // stdout still holds it (a pipe that was full): the next lines go to a fresh buffer
      if (process.stdout.writableLength > 0) buf = Buffer.allocUnsafeSlow(BUFFER_BYTES)
    }
    yield* Effect.addFinalizer(() => Effect.sync(flush))
    const written = (end: number) => {
      used = end
      if (used >= FLUSH_BYTES) flush()
      else if (timer === undefined) {
        timer = setTimeout(flush, FLUSH_MS)
        timer.unref()
      }
    }
    const writeJsonLine = jsonLineWriter()
    return AccessLog.make((line) => {
      if (line.length * 3 > buf.length - used) { // (UTF-8: at most 3 bytes per UTF-16 unit)
        flush()
        if (line.length * 3 > buf.length) { // a line longer than the whole buffer goes out alone
          process.stdout.write(line)
          return
        }
      }
      written(used + buf.write(line, used))
    }, (ms, entry) => {
      // the common JSON line, as bytes (accessLogBytes.ts); -1 sends it to the text path above,
      // which flushes first when the buffer is short of room
      const end = writeJsonLine(buf, used, ms, entry)
      if (end < 0) return false
      written(end)
      return true
    })
  }))

  /** In-memory sink a test can read: every line written, parsed back. */
  static readonly layerTest = (lines: Array<string>) => AccessLog.make((line) => { lines.push(line) })
}
