import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { bearerMatches, isLoopback, parseCliRequest, tokenDigest } from "../../src/domain/cliRequest.ts"

const errorPath = (body: unknown) => {
  const r = parseCliRequest(typeof body === "string" ? body : JSON.stringify(body))
  return Result.isFailure(r) ? r.failure.path : "ok"
}

describe("cli request body", () => {
  it("accepts a full request and a minimal one", () => {
    const r = parseCliRequest(JSON.stringify({ command: "python3", args: ["x.py"], stdin: "in", stream: false }))
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
