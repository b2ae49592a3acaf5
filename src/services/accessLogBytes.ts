/**
 * The JSON access-log line written straight into the access log's output buffer: the same bytes as
 * `jsonLine` (AccessLog.ts) encoded as UTF-8, without building the line as a string first (a line is
 * ~30 pieces, so the string costs ~1.2 KB of short-lived garbage and a flatten-and-encode per request).
 *
 * Only for the common line: every string field printable ASCII without `"` or `\` (nothing to escape,
 * one byte per character), counts that are non-negative safe integers, no `cli` field. Anything else
 * returns -1 and the caller writes `jsonLine`'s text instead, so escaping lives in one place.
 */
import type { AccessEntry } from "./AccessLog.ts"

/**
 * Printable ASCII except `"` and `\`: written as it is, between quotes. (A loop over the characters:
 * a regular-expression test per field, and a native `Buffer#write` per field, cost more than the
 * whole line's bytes written one by one.)
 */
const plain = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false
  }
  return true
}

const bytes = (s: string): Uint8Array => Buffer.from(s, "latin1")

/** `Date#toISOString` of second `s` up to its seconds and the dot ("...T01:27:05.", or with a ±YYYYYY year). */
export const isoSecond = (s: number): string => {
  const iso = new Date(s * 1000).toISOString()
  return iso.slice(0, iso.length - 4)
}
const TIME = bytes(`{"time":"`)
const REQUEST_ID = bytes(`","type":"access","request_id":"`)
const CLIENT_IP = bytes(`","client_ip":"`)
const METHOD = bytes(`","method":"`)
const URL_ = bytes(`","url":"`)
const STATUS = bytes(`","status":`)
const BYTES_IN = bytes(`,"bytes_in":`)
const BYTES_OUT = bytes(`,"bytes_out":`)
const DURATION = bytes(`,"duration_ms":`)
const UPSTREAM = bytes(`,"upstream":"`)
const OUTCOME = bytes(`","outcome":"`)
const KIND = bytes(`","kind":"`)
const TRACE_ID = bytes(`","trace_id":"`)
const END = bytes(`"}\n`)
/** The constant parts of a line with a trace id, and room for the four numbers (the time's room is added where its length is known). */
const FIXED = TIME.length + REQUEST_ID.length + CLIENT_IP.length + METHOD.length + URL_.length + STATUS.length +
  BYTES_IN.length + BYTES_OUT.length + DURATION.length + UPSTREAM.length + OUTCOME.length + KIND.length +
  TRACE_ID.length + END.length + 4 * 24

/**
 * A duration with at most 3 decimals as JSON.stringify writes it ("12", "1.5", "0.001"), from integer
 * arithmetic: the shortest-form double printing JSON.stringify needs is the costliest part of a line.
 */
export const msText = (ms: number): string => {
  const us = Math.round(ms * 1000)
  if (!Number.isSafeInteger(us) || us < 0 || us / 1000 !== ms) return JSON.stringify(ms)
  const whole = Math.floor(us / 1000)
  const frac = us - whole * 1000
  if (frac === 0) return `${whole}`
  if (frac % 100 === 0) return `${whole}.${frac / 100}`
  if (frac % 10 === 0) return `${whole}.${frac < 100 ? "0" : ""}${frac / 10}`
  return `${whole}.${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}`
}

const put = (buf: Buffer, pos: number, part: Uint8Array): number => {
  buf.set(part, pos)
  return pos + part.length
}

/** A string `plain` accepted: one byte per character. */
const text = (buf: Buffer, pos: number, s: string): number => {
  for (let i = 0; i < s.length; i++) buf[pos + i] = s.charCodeAt(i)
  return pos + s.length
}

/** A non-negative safe integer in decimal, as `${n}` writes it. */
const digits = (buf: Buffer, pos: number, n: number): number => {
  let end = pos + 1
  for (let m = n; m >= 10; m = Math.floor(m / 10)) end++
  for (let i = end - 1, m = n; i >= pos; i--, m = Math.floor(m / 10)) buf[i] = 48 + (m % 10)
  return end
}

/** A constant part, then a field's text (printable ASCII: one byte per character). */
const field = (buf: Buffer, pos: number, part: Uint8Array, s: string): number => text(buf, put(buf, pos, part), s)

/** A constant part, then a count's digits. */
const number = (buf: Buffer, pos: number, part: Uint8Array, n: number): number => digits(buf, put(buf, pos, part), n)

const count = (n: number): boolean => Number.isSafeInteger(n) && n >= 0

/**
 * A writer of common lines: `(buf, pos, ms, entry)` writes the line of `entry` logged at `ms` (epoch
 * milliseconds; the time field as `Date#toISOString` writes it, its text up to the seconds kept for
 * the rest of its second) at `pos` and returns the new position, or -1 (nothing written) when the
 * line is not a common one or does not fit.
 */
export const jsonLineWriter = () => {
  let second = Number.NaN
  let prefix: Uint8Array = new Uint8Array(0)
  return (buf: Buffer, pos: number, ms: number, e: AccessEntry): number => {
    if (e.cli !== undefined || !count(e.status) || !count(e.bytes_in) || !count(e.bytes_out) || !Number.isSafeInteger(ms)) return -1
    const trace = e.trace_id
    if (
      !plain(e.request_id) || !plain(e.client_ip) || !plain(e.method) || !plain(e.url) || !plain(e.upstream) ||
      !plain(e.outcome) || !plain(e.kind) || (trace !== undefined && !plain(trace))
    ) return -1
    const s = Math.floor(ms / 1000)
    if (s !== second) {
      second = s
      prefix = bytes(isoSecond(s))
    }
    const duration = msText(e.duration_ms)
    const room = FIXED + prefix.length + 4 + e.request_id.length + e.client_ip.length + e.method.length + e.url.length +
      e.upstream.length + e.outcome.length + e.kind.length + (trace?.length ?? 0) + duration.length
    if (pos + room > buf.length) return -1
    let p = put(buf, put(buf, pos, TIME), prefix)
    const frac = ms - s * 1000
    buf[p] = 48 + Math.floor(frac / 100)
    buf[p + 1] = 48 + Math.floor(frac / 10) % 10
    buf[p + 2] = 48 + frac % 10
    buf[p + 3] = 0x5a // Z
    p = field(buf, p + 4, REQUEST_ID, e.request_id)
    p = field(buf, p, CLIENT_IP, e.client_ip)
    p = field(buf, p, METHOD, e.method)
    p = field(buf, p, URL_, e.url)
    p = number(buf, p, STATUS, e.status)
    p = number(buf, p, BYTES_IN, e.bytes_in)
    p = number(buf, p, BYTES_OUT, e.bytes_out)
    p = field(buf, p, DURATION, duration)
    p = field(buf, p, UPSTREAM, e.upstream)
    p = field(buf, p, OUTCOME, e.outcome)
    p = field(buf, p, KIND, e.kind)
    if (trace !== undefined) p = field(buf, p, TRACE_ID, trace)
    return put(buf, p, END)
  }
}
