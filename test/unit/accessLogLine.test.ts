import { assert, describe, it } from "@effect/vitest"
import { type AccessEntry, isoClock, jsonLine, msText, textLine } from "../../src/services/AccessLog.ts"
import { jsonLineWriter } from "../../src/services/accessLogBytes.ts"

const base: AccessEntry = {
  request_id: "ab12cd34-1",
  client_ip: "127.0.0.1",
  method: "GET",
  url: "/",
  status: 200,
  bytes_in: 0,
  bytes_out: 1024,
  duration_ms: 1.235,
  upstream: "http://127.0.0.1:8000",
  outcome: "ok",
  kind: "reverse",
  trace_id: undefined
}
const TIME = "2026-12-01T07:00:00.123Z"
const reference = (e: AccessEntry) => JSON.stringify({ time: TIME, type: "access", ...e }) + "\n"

describe("access log JSON line (hand-written serializer)", () => {
  it("is the same text as JSON.stringify for a plain entry", () => {
    assert.strictEqual(jsonLine(TIME, base), reference(base))
  })

  it("escapes what JSON must: quotes, backslashes, control characters, lone surrogates (log injection)", () => {
    for (const url of ['/a"b', "/a\\b", "/a\nb\r{\"time\":1}", "/\u0000\u001f", "/\ud800x", "/ünïcödé/😀", "http://h/%22"]) {
      const e = { ...base, url, upstream: url, outcome: url }
      const line = jsonLine(TIME, e)
      assert.strictEqual(line, reference(e))
      assert.strictEqual(line.indexOf("\n"), line.length - 1, "one line per entry")
      assert.deepStrictEqual(JSON.parse(line).url, url)
    }
  })

  it("writes the optional cli and trace_id fields like JSON.stringify, in the same order", () => {
    const { trace_id: _, ...rest } = base
    const e: AccessEntry = { // the key order accessEntry() builds
      ...rest,
      cli: { command: "echo", args: 2, pid: 42, exit_code: 0, signal: null, killed: null },
      trace_id: "0af7651916cd43dd8448eb211c80319c"
    }
    assert.strictEqual(jsonLine(TIME, e), reference(e))
  })

  it("writes durations (microsecond resolution) exactly as JSON.stringify does", () => {
    for (let us = 0; us < 200_000; us += 7) {
      const ms = Math.round(us) / 1e3
      assert.strictEqual(msText(ms), JSON.stringify(ms))
    }
    for (const ms of [0, 1, 12, 0.5, 0.05, 0.001, 0.01, 0.1, 1.5, 10.25, 123456.789, 30000, 1e-7, 2.0000001]) {
      assert.strictEqual(msText(ms), JSON.stringify(ms))
    }
  })

  it("writes integer and fractional numbers as JSON does", () => {
    for (const d of [0, 12, 0.001, 1e-7, 123456.789]) {
      const e = { ...base, duration_ms: d, status: 502, bytes_in: 10485760 }
      assert.strictEqual(jsonLine(TIME, e), reference(e))
    }
  })

  it("the time field is Date#toISOString of the millisecond, across seconds, days and years", () => {
    const iso = isoClock()
    const start = Date.UTC(2026, 11, 31, 23, 59, 58, 990)
    for (let ms = start; ms < start + 2500; ms += 7) assert.strictEqual(iso(ms), new Date(ms).toISOString())
    for (const ms of [0, -1, 1, 999, 1000, 253402300799999, 253402300800000, Date.UTC(1969, 0, 1), start]) {
      assert.strictEqual(iso(ms), new Date(ms).toISOString())
    }
  })
})

describe("access log JSON line written as bytes (accessLogBytes.ts)", () => {
  const writeJsonLine = jsonLineWriter()
  const MS = Date.parse(TIME)
  const written = (e: AccessEntry, at = 5, ms = MS): string | undefined => {
    const buf = Buffer.alloc(4096, 0x2a)
    const end = writeJsonLine(buf, at, ms, e)
    if (end < 0) {
      assert.isTrue(buf.every((b) => b === 0x2a), "nothing written when it declines")
      return undefined
    }
    assert.isTrue(buf.subarray(0, at).every((b) => b === 0x2a) && buf.subarray(end).every((b) => b === 0x2a), "only its own bytes")
    return buf.toString("utf8", at, end)
  }

  it("writes the same bytes as jsonLine's text for common lines (with and without a trace id, any counts)", () => {
    const entries: Array<AccessEntry> = [
      base,
      { ...base, trace_id: "0af7651916cd43dd8448eb211c80319c" },
      { ...base, status: 502, bytes_in: 10485760, bytes_out: 0, duration_ms: 0, outcome: "upstream_timeout", upstream: "" },
      { ...base, bytes_out: Number.MAX_SAFE_INTEGER, duration_ms: 123456.789, url: "http://example.com:8080/a/b?c=d&e=%22f%22#x", method: "OPTIONS" },
      { ...base, client_ip: "::1", url: "*", kind: "control", request_id: "client.supplied:ID-9" }
    ]
    for (const e of entries) assert.strictEqual(written(e), jsonLine(TIME, e))
  })

  it("writes the time field as Date#toISOString does, across milliseconds, seconds, days and years (±YYYYYY ones too)", () => {
    const start = Date.UTC(2026, 11, 31, 23, 59, 58, 990)
    const times = [0, 1, 999, 1000, 253402300799999, 253402300800000, -62198755200000, Date.UTC(1969, 0, 1), Date.UTC(1969, 11, 31, 23, 59, 59, 999)]
    for (let ms = start; ms < start + 2500; ms += 7) times.push(ms)
    for (const ms of times) assert.strictEqual(written(base, 5, ms), jsonLine(new Date(ms).toISOString(), base), String(ms))
    // a time that is not a whole millisecond goes to jsonLine
    assert.strictEqual(written(base, 5, 1.5), undefined)
  })

  it("declines (nothing written) what needs escaping or is unusual, which jsonLine then writes", () => {
    const declined: Array<AccessEntry> = [
      { ...base, url: '/a"b' },
      { ...base, url: "/a\\b" },
      { ...base, url: "/a\nb" },
      { ...base, url: "/\u007f" },
      { ...base, url: "/ünï" },
      { ...base, upstream: "http://[::1]:80\u0000" },
      { ...base, status: -1 },
      { ...base, bytes_in: 1.5 },
      { ...base, bytes_out: Number.MAX_SAFE_INTEGER + 1 },
      { ...base, cli: { command: "echo", args: 1, pid: 1, exit_code: 0, signal: null, killed: null } }
    ]
    for (const e of declined) assert.strictEqual(written(e), undefined, JSON.stringify(e))
  })

  it("declines a line that does not fit in the rest of the buffer", () => {
    const buf = Buffer.alloc(300)
    assert.strictEqual(writeJsonLine(buf, 0, MS, { ...base, url: "/" + "x".repeat(400) }), -1)
    assert.isAbove(writeJsonLine(Buffer.alloc(1000), 0, MS, base), 0)
  })
})

describe("access log text line (logging.format: text)", () => {
  it("writes every field, kind included, on one line", () => {
    assert.strictEqual(
      textLine(TIME, { ...base, trace_id: "0af7651916cd43dd8448eb211c80319c" }),
      `${TIME} 127.0.0.1 "GET /" 200 in=0 out=1024 1.235ms upstream=http://127.0.0.1:8000 outcome=ok kind=reverse id=ab12cd34-1 trace=0af7651916cd43dd8448eb211c80319c\n`
    )
  })

  it("log injection: escapes request bytes as nginx does (\\xHH for \", \\ and bytes outside printable ASCII)", () => {
    // request bytes reach the log as latin1 text: one character per byte, as Node's parser gives them
    const url = "/\u001b[31mRED\u001b[0m/a\"b\\c/\u007f/" + Buffer.from("é", "utf8").toString("latin1") + "\r\n{x}"
    const line = textLine(TIME, { ...base, method: "G\"T", url })
    assert.strictEqual(line.split("\n").length, 2, "one line")
    assert.include(line, `"G\\x22T /\\x1B[31mRED\\x1B[0m/a\\x22b\\x5Cc/\\x7F/\\xC3\\xA9\\x0D\\x0A{x}" 200 `)
    for (let i = 0; i < line.length - 1; i++) {
      const c = line.charCodeAt(i)
      assert.isTrue(c >= 0x20 && c <= 0x7e, `printable ASCII only, got ${c} at ${i}`)
    }
    // the quoted request is the only quoted field: a reader splitting on quotes gets it whole
    assert.strictEqual(line.split('"').length, 3)
  })

  it("outside the quotes a space is escaped too, and a CLI command is written as its UTF-8 bytes", () => {
    const line = textLine(TIME, {
      ...base,
      outcome: "a b",
      cli: { command: "/opt/my tool/é", args: 1, pid: 42, exit_code: 0, signal: null, killed: null }
    })
    assert.include(line, " outcome=a\\x20b kind=reverse ")
    assert.include(line, " cli=/opt/my\\x20tool/\\xC3\\xA9 args=1 exit=0 killed=-\n")
  })
})
