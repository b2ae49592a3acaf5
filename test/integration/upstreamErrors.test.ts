import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { startOrigin, startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

describe("upstream failures map to 502/504 and never hurt other clients", () => {
  let proxy: RunningProxy
  const raws: Array<{ close: () => Promise<void> }> = []
  const ports: Record<string, number> = {}
  beforeAll(async () => {
    const reset = await startRawOrigin((s) => s.once("data", () => s.resetAndDestroy()))
    const garbage = await startRawOrigin((s) => s.once("data", () => s.end("NOT HTTP AT ALL\r\n\r\n")))
    const badHeader = await startRawOrigin((s) => s.once("data", () => s.end("HTTP/1.1 200 OK\r\nX-Bad Header: v\r\nContent-Length: 0\r\n\r\n")))
    const silent = await startRawOrigin(() => {})
    // 100 KB declared: more than security.inspection.hold_bytes (64 KB), so the head goes out with the first chunk
    const truncated = await startRawOrigin((s) => s.once("data", () => {
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly-part")
      setTimeout(() => s.destroy(), 50)
    }))
    // 100 bytes declared: held whole by content inspection before the head is sent
    const truncatedSmall = await startRawOrigin((s) => s.once("data", () => {
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part")
      setTimeout(() => s.destroy(), 50)
    }))
    const good = await startOrigin()
    raws.push(reset, garbage, badHeader, silent, truncated, truncatedSmall, good)
    Object.assign(ports, { reset: reset.port, garbage: garbage.port, badHeader: badHeader.port, silent: silent.port, truncated: truncated.port, truncatedSmall: truncatedSmall.port, good: good.port })
    const rule = (host: string, port: number) => ({ match: { host }, forward: { target: `http://127.0.0.1:${port}` } })
    proxy = await startProxy({
      server: { timeouts: { read: "500ms", connect: "500ms" } },
      routing: {
        default_backend: "http://127.0.0.1:1",
        rules: [rule("reset", reset.port), rule("garbage", garbage.port), rule("badheader", badHeader.port), rule("silent", silent.port), rule("truncated", truncated.port), rule("truncated-small", truncatedSmall.port), rule("good", good.port)]
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await Promise.all(raws.map((r) => r.close()))
  })

  const get = (host: string) => rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, 3000)
  const json = (text: string) => JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { error: string; detail: string }

  it("connection refused → 502 bad_gateway (connect)", async () => {
    const r = await get("refused.test")
    expect(statusOf(r.text)).toBe(502)
    expect(json(r.text)).toMatchObject({ error: "bad_gateway" })
    expect(json(r.text).detail).toContain("connect")
    const entry = proxy.entries().find((e) => e.outcome === "upstream_connect")
    expect(entry).toMatchObject({ status: 502, kind: "reverse" })
    expect(entry?.bytes_out).toBe(Buffer.byteLength(r.text.slice(r.text.indexOf("\r\n\r\n") + 4)))
  })
  it("connection reset before a response → 502 (reset)", async () => {
    const r = await get("reset")
    expect(statusOf(r.text)).toBe(502)
    expect(json(r.text).detail).toContain("reset")
  })
  it("RFC 9112 §4: an unparseable status line → 502 (bad_response)", async () => {
    const r = await get("garbage")
    expect(statusOf(r.text)).toBe(502)
    expect(json(r.text).detail).toContain("bad_response")
  })
  it("RFC 9112 §5.1: a malformed upstream header → 502", async () => {
    expect(statusOf((await get("badheader")).text)).toBe(502)
  })
  it("an upstream that never answers → 504 after the read timeout", async () => {
    const r = await get("silent")
    expect(statusOf(r.text)).toBe(504)
    expect(json(r.text)).toMatchObject({ error: "upstream_timeout" })
  })
  it("RFC 9112 §8: a response cut short after its head was sent → the client connection is cut, not completed", async () => {
    const r = await get("truncated")
    expect(statusOf(r.text)).toBe(200)
    expect(r.closed).toBe(true)
    expect(r.text.length).toBeLessThan(r.text.indexOf("\r\n\r\n") + 4 + 100000)
    expect(r.text).not.toContain("0\r\n\r\n")
    expect(proxy.entries().some((e) => e.outcome === "upstream_reset" || e.outcome === "upstream_bad_response")).toBe(true)
  })
  it("RFC 9112 §8: a small body cut short while still held by content inspection → 502, nothing partial delivered", async () => {
    const r = await get("truncated-small")
    expect(statusOf(r.text)).toBe(502)
    expect(r.text).not.toContain("only-part")
  })
  it("the proxy still serves other clients", async () => {
    expect(statusOf((await get("good")).text)).toBe(200)
  })
})
