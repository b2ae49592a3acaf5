import { describe, expect, it } from "@effect/vitest"
import { exitLine, incompleteTail, KILLED_REASONS, makeEventEncoder, startLine, wholeDocumentPieces } from "../../src/domain/cliEvents.ts"
import { cliOutcome } from "../../src/domain/metricLabels.ts"

const parse = (ndjson: string) => ndjson.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>)

describe("cli NDJSON events", () => {
  it("encodes start and exit lines", () => {
    expect(startLine(42)).toBe(`{"type":"start","pid":42}\n`)
    expect(parse(exitLine({ code: 0, signal: null, duration_ms: 12, timed_out: false, killed: null }))).toEqual([
      { type: "exit", code: 0, signal: null, duration_ms: 12, timed_out: false, killed: null }
    ])
  })
  it("finds an incomplete UTF-8 sequence at the end", () => {
    const euro = Buffer.from("€") // 3 bytes
    const emoji = Buffer.from("😀") // 4 bytes
    expect(incompleteTail(Buffer.from("abc"))).toBe(0)
    expect(incompleteTail(euro)).toBe(0)
    expect(incompleteTail(euro.subarray(0, 1))).toBe(1)
    expect(incompleteTail(euro.subarray(0, 2))).toBe(2)
    expect(incompleteTail(emoji.subarray(0, 3))).toBe(3)
    expect(incompleteTail(Buffer.concat([Buffer.from("a"), emoji.subarray(0, 2)]))).toBe(2)
  })
  it("holds back a character split across chunks and sends text, per stream", () => {
    const enc = makeEventEncoder()
    const bytes = Buffer.from("x€y")
    expect(enc.chunk("stdout", bytes.subarray(0, 2))).toBe(`{"type":"stdout","data":"x"}\n`)
    expect(enc.chunk("stderr", Buffer.from("e"))).toBe(`{"type":"stderr","data":"e"}\n`)
    expect(parse(enc.chunk("stdout", bytes.subarray(2)))).toEqual([{ type: "stdout", data: "€y" }])
    expect(enc.flush()).toBe("")
  })
  it("sends bytes that are not UTF-8 as base64", () => {
    const enc = makeEventEncoder()
    const bad = Buffer.from([0x41, 0xff, 0xfe, 0x42])
    expect(parse(enc.chunk("stdout", bad))).toEqual([{ type: "stdout", data: bad.toString("base64"), encoding: "base64" }])
  })
  it("flushes an incomplete character left at the end as base64", () => {
    const enc = makeEventEncoder()
    expect(enc.chunk("stdout", Buffer.from([0xe2, 0x82]))).toBe("")
    expect(parse(enc.flush())).toEqual([{ type: "stdout", data: Buffer.from([0xe2, 0x82]).toString("base64"), encoding: "base64" }])
  })
  it("escapes text safely inside JSON (one event per line)", () => {
    const enc = makeEventEncoder()
    const text = "a\"b\\c\nd\u2028e"
    const out = enc.chunk("stdout", Buffer.from(text))
    expect(out.split("\n").length).toBe(2)
    expect(parse(out)[0]?.data).toBe(text)
  })
  it("encodes a whole output for the non-streaming answer", () => {
    const exit = { code: 0, signal: null, duration_ms: 1, timed_out: false, killed: null }
    const doc = JSON.parse([...wholeDocumentPieces(7, Buffer.from("ok"), Buffer.from([0xff]), exit)].join(""))
    expect(doc.stdout).toBe("ok")
    expect(doc.stdout_encoding).toBeUndefined()
    expect(doc.stderr).toBe("/w==")
    expect(doc.stderr_encoding).toBe("base64")
  })
  it("every killed reason is its own metrics outcome label (the access log and the metric agree)", () => {
    for (const killed of KILLED_REASONS) expect(cliOutcome({ exit_code: null, signal: "SIGTERM", killed })).toBe(killed)
    expect(cliOutcome({ exit_code: null, signal: "SIGKILL", killed: null })).toBe("signal")
  })
})
