import { assert, describe, it } from "@effect/vitest"
import { formatTraceparent, parseTraceparent } from "../../src/domain/traceparent.ts"

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
const SPAN = "00f067aa0ba902b7"

describe("W3C Trace Context traceparent", () => {
  it("parses version 00", () => {
    assert.deepStrictEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN, flags: 1 })
    assert.deepStrictEqual(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.flags, 0)
  })
  it("accepts a future version with extra fields", () => {
    assert.strictEqual(parseTraceparent(`01-${TRACE}-${SPAN}-01-extra`)?.traceId, TRACE)
  })
  it("rejects malformed values (the proxy then starts a new trace)", () => {
    for (const bad of [
      undefined,
      "",
      `00-${TRACE}-${SPAN}-01-extra`, // version 00 has exactly four fields
      `ff-${TRACE}-${SPAN}-01`, // version ff is invalid
      `00-${"0".repeat(32)}-${SPAN}-01`, // all-zero trace id
      `00-${TRACE}-${"0".repeat(16)}-01`, // all-zero parent id
      `00-${TRACE.toUpperCase()}-${SPAN}-01`, // uppercase hex is invalid
      `00-${TRACE}-${SPAN}`,
      [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`] // repeated header
    ]) assert.isUndefined(parseTraceparent(bad), String(bad))
  })
  it("formats", () => {
    assert.strictEqual(formatTraceparent(TRACE, SPAN, true), `00-${TRACE}-${SPAN}-01`)
    assert.strictEqual(formatTraceparent(TRACE, SPAN, false), `00-${TRACE}-${SPAN}-00`)
  })
})

describe("upstreamRequestHeaders with a traceparent", () => {
  it("replaces the client's traceparent and keeps tracestate", async () => {
    const { upstreamRequestHeaders } = await import("../../src/domain/hopHeaders.ts")
    const info = { clientIp: "10.0.0.7", proto: "http" as const, host: "h", via: "1.1 gatehouse", requestId: "r", maxForwards: undefined, contentLength: undefined }
    const raw = ["traceparent", `00-${TRACE}-${SPAN}-01`, "tracestate", "k=v"]
    const ours = formatTraceparent(TRACE, "1111111111111111", true)
    const out = upstreamRequestHeaders(raw, "h", { ...info, traceparent: ours })
    const tps = out.filter((_, i) => i % 2 === 0 && out[i] === "traceparent").length
    assert.strictEqual(tps, 1)
    assert.strictEqual(out[out.indexOf("traceparent") + 1], ours)
    assert.strictEqual(out[out.indexOf("tracestate") + 1], "k=v")
    // tracing off: the client's traceparent passes through untouched
    const plain = upstreamRequestHeaders(raw, "h", info)
    assert.strictEqual(plain[plain.indexOf("traceparent") + 1], `00-${TRACE}-${SPAN}-01`)
  })
})
