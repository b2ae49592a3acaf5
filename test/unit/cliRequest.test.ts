import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { bearerMatches, bodyCapFor, isLoopback, makePartMeter, MAX_ARG_BYTES, MAX_ARGS, MAX_COMMAND_CHARS, parseCliRequest, tokenDigest } from "../../src/domain/cliRequest.ts"

const STDIN = 1024
const errorPath = (body: unknown) => {
  const r = parseCliRequest(typeof body === "string" ? body : JSON.stringify(body), STDIN)
  return Result.isFailure(r) ? r.failure.path : "ok"
}
const failure = (body: unknown) => {
  const r = parseCliRequest(JSON.stringify(body), STDIN)
  return Result.isFailure(r) ? r.failure : undefined
}

/** Feeds a body to a fresh meter in pieces of `size` bytes; the first problem, or undefined. */
const meter = (body: string | Uint8Array, size = 1 << 20, maxStdin = STDIN) => {
  const bytes = typeof body === "string" ? Buffer.from(body) : body
  const m = makePartMeter(maxStdin)
  for (let i = 0; i < bytes.length; i += size) {
    const problem = m.write(bytes.subarray(i, i + size))
    if (problem !== undefined) return problem
  }
  return undefined
}

describe("cli request body", () => {
  it("accepts a full request and a minimal one", () => {
    const r = parseCliRequest(JSON.stringify({ command: "python3", args: ["x.py"], stdin: "in", stream: false }), STDIN)
    expect(Result.isSuccess(r) && r.success).toEqual({ command: "python3", args: ["x.py"], stdin: "in", stream: false })
    expect(errorPath({ command: "node" })).toBe("ok")
  })
  it("names the field path of the first problem", () => {
    expect(errorPath({})).toBe("command")
    expect(errorPath({ command: 1 })).toBe("command")
    expect(errorPath({ command: "a".repeat(4097) })).toBe("command")
    expect(errorPath({ command: "node", args: ["a", 1] })).toBe("args.1")
    expect(errorPath({ command: "node", args: ["a".repeat(32_769)] })).toBe("args.0")
    expect(errorPath({ command: "node", args: Array.from({ length: 257 }, () => "") })).toBe("args")
    expect(errorPath({ command: "node", stdin: 5 })).toBe("stdin")
    expect(errorPath({ command: "node", unknown: true })).toBe("unknown")
    expect(errorPath("[1,2]")).toBe("")
    expect(errorPath("nope")).toBe("")
  })
  it("threat: NUL bytes in command or args are refused", () => {
    expect(errorPath({ command: "node\u0000x" })).toBe("command")
    expect(errorPath({ command: "node", args: ["\u0000"] })).toBe("args.0")
  })
})

describe("cli body limits: documented per part, measured decoded", () => {
  it("counts arguments in UTF-8 bytes, not characters", () => {
    expect(errorPath({ command: "node", args: ["é".repeat(MAX_ARG_BYTES / 2)] })).toBe("ok")
    expect(failure({ command: "node", args: ["a", "é".repeat(MAX_ARG_BYTES / 2 + 1)] })).toEqual({ path: "args.1", message: "exceeds 32768 bytes" })
    expect(failure({ command: "node", args: ["a", "b", "c", "x".repeat(MAX_ARG_BYTES + 1)] })).toEqual({ path: "args.3", message: "exceeds 32768 bytes" })
  })
  it("names stdin over max_stdin_bytes (UTF-8 bytes)", () => {
    expect(errorPath({ command: "node", stdin: "x".repeat(STDIN) })).toBe("ok")
    expect(failure({ command: "node", stdin: "é".repeat(STDIN / 2 + 1) })).toEqual({ path: "stdin", message: "exceeds 1024 bytes (cli.max_stdin_bytes)" })
  })
  it("the body cap holds the largest request within the limits, JSON escaping included (6 bytes per control character)", () => {
    const control = "\u0001"
    const largest = JSON.stringify({
      command: control.repeat(MAX_COMMAND_CHARS),
      args: Array.from({ length: MAX_ARGS }, () => control.repeat(MAX_ARG_BYTES)),
      stdin: control.repeat(STDIN),
      stream: false
    }, null, 2)
    expect(Buffer.byteLength(largest)).toBeLessThanOrEqual(bodyCapFor(STDIN))
    expect(meter(largest)).toBeUndefined()
    expect(bodyCapFor(STDIN)).toBeLessThan(7 * (MAX_ARGS * MAX_ARG_BYTES + STDIN) + 1024 * 1024)
  })
  it("meter: finds the part over its limit while the body streams in, wherever the chunks are cut", () => {
    const big = JSON.stringify({ command: "node", args: ["a", "\u0001".repeat(MAX_ARG_BYTES), "\n\"\\😀".repeat(MAX_ARG_BYTES / 8)], stdin: "é€😀\u2028".repeat(STDIN / 12) })
    const over = JSON.stringify({ command: "node", args: ["a", "b", "€".repeat(MAX_ARG_BYTES / 3), "é".repeat(MAX_ARG_BYTES / 2) + "x"] })
    const stdinOver = JSON.stringify({ stdin: "\u0001".repeat(STDIN + 1), command: "node" })
    for (const size of [1, 3, 7, 4096, 1 << 20]) {
      expect(meter(big, size), `size ${size}`).toBeUndefined()
      expect(meter(over, size), `size ${size}`).toEqual({ path: "args.3", message: "exceeds 32768 bytes" })
      expect(meter(stdinOver, size), `size ${size}`).toEqual({ path: "stdin", message: "exceeds 1024 bytes (cli.max_stdin_bytes)" })
    }
  })
  it("meter: decodes \\u escapes (surrogate pairs are 4 bytes) and escaped key names", () => {
    const pair = "\\ud83d\\ude00" // one 4-byte character written as two escapes
    expect(meter(`{"stdin":"${pair.repeat(STDIN / 4)}"}`)).toBeUndefined()
    expect(meter(`{"stdin":"${pair.repeat(STDIN / 4)}a"}`)).toMatchObject({ path: "stdin" })
    expect(meter(`{"\\u0073tdin":"${"s".repeat(STDIN + 1)}"}`)).toMatchObject({ path: "stdin" })
    expect(meter(`{"args":["${"\\u00e9".repeat(MAX_ARG_BYTES / 2)}"]}`)).toBeUndefined()
    expect(meter(`{"args":["${"\\u20ac".repeat(MAX_ARG_BYTES / 3 + 1)}"]}`)).toMatchObject({ path: "args.0" })
  })
  it("meter: counts arguments, and only strings that are args or stdin of the top-level object", () => {
    expect(meter(JSON.stringify({ command: "node", args: Array.from({ length: MAX_ARGS }, () => 1) }))).toBeUndefined()
    expect(meter(JSON.stringify({ command: "node", args: Array.from({ length: MAX_ARGS + 1 }, () => "") }))).toEqual({ path: "args", message: "more than 256 arguments" })
    const long = "x".repeat(MAX_ARG_BYTES + 1)
    expect(meter(JSON.stringify({ command: "node", other: { stdin: long, args: [long] }, more: [[long]], args: [[long], { a: long }] }))).toBeUndefined()
    expect(meter(JSON.stringify({ args: ["a", [1, 2, ["x"]], { k: [1] }, long] }))).toEqual({ path: "args.3", message: "exceeds 32768 bytes" })
  })
})

describe("cli auth", () => {
  const expected = tokenDigest("t0ken")
  it("matches only `Bearer <token>`", () => {
    expect(bearerMatches("Bearer t0ken", expected)).toBe(true)
    expect(bearerMatches("bearer t0ken", expected)).toBe(true)
    for (const h of [undefined, "", "Bearer", "Bearer ", "Bearer t0ke", "Bearer t0ken1", "Basic t0ken", "t0ken", "Bearer t0ken extra"]) {
      expect(bearerMatches(h, expected), String(h)).toBe(false)
    }
  })
  it("knows loopback addresses", () => {
    expect(isLoopback("127.0.0.1")).toBe(true)
    expect(isLoopback("127.9.9.9")).toBe(true)
    expect(isLoopback("::1")).toBe(true)
    expect(isLoopback("10.0.0.1")).toBe(false)
    expect(isLoopback("::ffff:127.0.0.1")).toBe(false) // the pipeline normalises mapped addresses first
    expect(isLoopback("")).toBe(false)
  })
})
