import { describe, expect, it } from "@effect/vitest"
import { parseDurationMs, parseSizeBytes } from "../../src/domain/units.ts"

describe("durations", () => {
  it("parses ms, s, m, h and bare seconds", () => {
    expect(parseDurationMs("250ms")).toBe(250)
    expect(parseDurationMs("30s")).toBe(30_000)
    expect(parseDurationMs("2m")).toBe(120_000)
    expect(parseDurationMs("1h")).toBe(3_600_000)
    expect(parseDurationMs("1.5s")).toBe(1500)
    expect(parseDurationMs(5)).toBe(5000)
    expect(parseDurationMs("5")).toBe(5000)
  })
  it("rejects malformed input", () => {
    for (const bad of ["", "abc", "5 parsecs", "-1s", "s", "1s2"]) expect(parseDurationMs(bad)).toBeUndefined()
    expect(parseDurationMs(-1)).toBeUndefined()
  })
})

describe("sizes", () => {
  it("parses binary multiples", () => {
    expect(parseSizeBytes("10MB")).toBe(10 * 1024 * 1024)
    expect(parseSizeBytes("512KB")).toBe(512 * 1024)
    expect(parseSizeBytes("1gb")).toBe(1024 ** 3)
    expect(parseSizeBytes(8192)).toBe(8192)
    expect(parseSizeBytes("100")).toBe(100)
  })
  it("rejects malformed input", () => {
    for (const bad of ["", "ten MB", "10XB", "-5MB"]) expect(parseSizeBytes(bad)).toBeUndefined()
    expect(parseSizeBytes(1.5)).toBeUndefined()
  })
})
