import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { gzipSync } from "node:zlib"
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
    // a chunked body whose content also carries a gzip transfer coding, as the Transfer-Encoding names
    const gz = gzipSync("coded body")
    const coded = (te: string) => startRawOrigin((s) => s.once("data", () => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: ${te}\r\n\r\n`)
      s.end(te.toLowerCase().endsWith("chunked") ? Buffer.concat([Buffer.from(`${gz.length.toString(16)}\r\n`), gz, Buffer.from("\r\n0\r\n\r\n")]) : gz)
    }))
    const gzipChunked = await coded("gzip, chunked")
    const gzipOnly = await coded("gzip")
    const chunkedWith = (te: string) =>
      startRawOrigin((s) => s.once("data", () => s.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)))
    const chunkedUpper = await chunkedWith("Chunked  ")
    const chunkedTab = await chunkedWith("chunked\t")
    raws.push(reset, garbage, badHeader, silent, truncated, truncatedSmall, good, gzipChunked, gzipOnly, chunkedUpper, chunkedTab)
    Object.assign(ports, { reset: reset.port, garbage: garbage.port, badHeader: badHeader.port, silent: silent.port, truncated: truncated.port, truncatedSmall: truncatedSmall.port, good: good.port })
    const rule = (host: string, port: number) => ({ match: { host }, forward: { target: `http://127.0.0.1:${port}` } })
    proxy = await startProxy({
      server: { timeouts: { read: "500ms", connect: "500ms" } },
      routing: {
        default_backend: "http://127.0.0.1:1",
        rules: [rule("reset", reset.port), rule("garbage", garbage.port), rule("badheader", badHeader.port), rule("silent", silent.port), rule("truncated", truncated.port), rule("truncated-small", truncatedSmall.port), rule("good", good.port),
          rule("gzip-chunked", gzipChunked.port), rule("gzip-only", gzipOnly.port), rule("chunked-upper", chunkedUpper.port), rule("chunked-tab", chunkedTab.port)]
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
  it("RFC 9112 §6.1: a response transfer coding other than chunked (gzip, chunked) → 502 bad_response, not relayed de-chunked with its coding dropped", async () => {
    for (const host of ["gzip-chunked", "gzip-only"]) {
      const r = await get(host)
      expect(statusOf(r.text), host).toBe(502)
      expect(json(r.text).detail, host).toContain("bad_response")
      expect(r.text, host).not.toContain("\x1f\x8b")
    }
  })
  it("RFC 9112 §7: chunked is matched case-insensitively, trailing spaces not part of the value (\"Chunked  \" is decoded)", async () => {
    const r = await get("chunked-upper")
    expect(statusOf(r.text)).toBe(200)
    // the proxy's own chunking of "hello" (the origin's framing relayed as body would be one larger chunk)
    expect(r.text.slice(r.text.indexOf("\r\n\r\n") + 4)).toBe("5\r\nhello\r\n0\r\n\r\n")
  })
  it("RFC 9112 §6.3: \"chunked<TAB>\", which the response parser does not read as chunked, is 502 — never relayed (or cached) with its chunk framing as the body", async () => {
    const r = await get("chunked-tab")
    expect(statusOf(r.text)).toBe(502)
    expect(r.text).not.toContain("5\r\nhello")
  })
  it("the proxy still serves other clients", async () => {
    expect(statusOf((await get("good")).text)).toBe(200)
  })
})

/**
 * An origin whose first connection gets a response head and half of its 100-byte body, then a close;
 * every later connection gets a whole response of a different body (cacheable for 10 minutes).
 */
const startCutThenWholeOrigin = async () => {
  let requests = 0
  const raw = await startRawOrigin((s) => s.once("data", () => {
    if (++requests === 1) s.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=600\r\nContent-Length: 100\r\n\r\n${"A".repeat(50)}`)
    else s.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=600\r\nContent-Length: 100\r\n\r\n${"B".repeat(100)}`)
  }))
  return { ...raw, requests: () => requests }
}

describe("RFC 9110 §9.2.2 retries: only before any response byte", () => {
  const body = (text: string) => text.slice(text.indexOf("\r\n\r\n") + 4)
  const get = (port: number) => rawRequest(port, "GET /page HTTP/1.1\r\nHost: cut.test\r\nConnection: close\r\n\r\n", 3000)

  it("threat: response splicing — a GET cut after its head arrived (held by content inspection) is not retried: 502 reset, never the cut attempt's bytes in front of another response", async () => {
    const origin = await startCutThenWholeOrigin()
    const proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${origin.port}` } })
    try {
      const r = await get(proxy.port)
      expect(statusOf(r.text)).toBe(502)
      expect((JSON.parse(body(r.text)) as { detail: string }).detail).toContain("reset")
      expect(r.text).not.toContain("AAAA")
      expect(r.text).not.toContain("BBBB")
      expect(origin.requests()).toBe(1)
      // the next request is the origin's whole answer, alone
      const next = await get(proxy.port)
      expect(statusOf(next.text)).toBe(200)
      expect(body(next.text)).toBe("B".repeat(100))
    } finally {
      await proxy.stop()
      await origin.close()
    }
  })

  it("threat: cache poisoning — with the cache on, the cut GET stores nothing: the next request is fetched whole, not a hit", async () => {
    const origin = await startCutThenWholeOrigin()
    const proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${origin.port}` }, cache: { enabled: true } })
    try {
      expect(statusOf((await get(proxy.port)).text)).toBe(502)
      const next = await get(proxy.port)
      expect(statusOf(next.text)).toBe(200)
      expect(body(next.text)).toBe("B".repeat(100))
      expect(next.text.toLowerCase()).not.toMatch(/cache-status: [^\r]*hit/)
      expect(origin.requests()).toBe(2)
      const again = await get(proxy.port)
      expect(body(again.text)).toBe("B".repeat(100))
    } finally {
      await proxy.stop()
      await origin.close()
    }
  })
})
