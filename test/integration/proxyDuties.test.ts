import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect } from "node:net"
import { type Origin, startOrigin, startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusesOf, statusOf } from "../fixtures/raw.ts"

describe("RFC 9110/9112 proxy duties", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin((req, res, body) => {
      if (req.url === "/hop") {
        res.writeHead(200, { connection: "x-internal", "x-internal": "secret", "keep-alive": "timeout=5", "content-length": 2 })
        return res.end("ok")
      }
      if (req.url === "/trailers") {
        res.writeHead(200, { "content-type": "text/plain", trailer: "x-checksum" })
        res.write("part1;")
        res.addTrailers({ "x-checksum": "abc123" })
        return res.end("part2")
      }
      const out = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString(), trailers: req.trailers })
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) })
      res.end(out)
    })
    proxy = await startProxy({ routing: { default_backend: origin.url } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  const send = (text: string) => rawRequest(proxy.port, text)
  const bodyOf = (text: string) => JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { headers: Record<string, string>; body: string; method: string }

  it("§7.6.1: hop-by-hop and Connection-named request fields never reach the upstream", async () => {
    const r = await send("GET /h HTTP/1.1\r\nHost: a\r\nConnection: X-Private, close\r\nX-Private: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nProxy-Authorization: Basic YTpi\r\n\r\n")
    const h = bodyOf(r.text).headers
    for (const n of ["x-private", "keep-alive", "te", "proxy-connection", "upgrade", "proxy-authorization"]) expect(h[n]).toBeUndefined()
  })

  it("§7.6.1: hop-by-hop and Connection-named response fields never reach the client; Via is added (§7.6.3)", async () => {
    const r = await send("GET /hop HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    expect(statusOf(r.text)).toBe(200)
    expect(r.text.toLowerCase()).not.toContain("x-internal")
    expect(r.text.toLowerCase()).not.toContain("timeout=5")
    expect(r.text.toLowerCase()).toContain("via: 1.1 gatehouse")
  })

  it("§8.6: an interim (1xx) response is relayed without the Content-Length the origin put on it", async () => {
    const raw = await startRawOrigin((s) => {
      s.once("data", () => {
        s.write("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nContent-Length: 0\r\n\r\n")
        setTimeout(() => s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"), 20)
      })
    })
    const p = await startProxy({ routing: { default_backend: `http://127.0.0.1:${raw.port}` } })
    try {
      const r = await rawRequest(p.port, "GET /hints HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3000)
      expect(statusesOf(r.text)).toEqual([103, 200])
      const interim = r.text.slice(0, r.text.indexOf("\r\n\r\n")).toLowerCase()
      expect(interim).toContain("link: </s.css>; rel=preload")
      expect(interim).not.toContain("content-length")
    } finally {
      await p.stop()
      await raw.close()
    }
  })

  it("§8.6: a 204 is relayed without the Content-Length the origin put on it (fresh and from the cache)", async () => {
    const raw = await startRawOrigin((s) => {
      s.on("data", () => s.write("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nCache-Control: max-age=60\r\nX-Mark: 1\r\n\r\n"))
    })
    const p = await startProxy({ routing: { default_backend: `http://127.0.0.1:${raw.port}` }, cache: { enabled: true } })
    try {
      for (const round of ["miss", "hit"]) {
        const r = await rawRequest(p.port, "GET /empty HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 3000)
        expect(statusOf(r.text), round).toBe(204)
        const head = r.text.slice(0, r.text.indexOf("\r\n\r\n")).toLowerCase()
        expect(head, round).toContain("x-mark: 1")
        expect(head, round).not.toContain("content-length")
      }
    } finally {
      await p.stop()
      await raw.close()
    }
  })

  it("§7.6.2: OPTIONS with Max-Forwards: 0 is answered by the proxy", async () => {
    const before = origin.seen.length
    const r = await send("OPTIONS /x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n")
    expect(statusOf(r.text)).toBe(200)
    expect(r.text.toLowerCase()).toContain("allow:")
    expect(origin.seen.length).toBe(before)
  })

  it("§7.6.2 / §9.3.8: TRACE with Max-Forwards: 0 echoes the request as message/http without credentials", async () => {
    const r = await send("TRACE /t HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nAuthorization: Bearer s3cret\r\nX-Probe: yes\r\nConnection: close\r\n\r\n")
    expect(statusOf(r.text)).toBe(200)
    expect(r.text).toContain("message/http")
    expect(r.text).toContain("X-Probe: yes")
    expect(r.text).not.toContain("s3cret")
  })

  it("§7.6.2: Max-Forwards above 0 is decremented on the way up", async () => {
    const r = await send("OPTIONS /x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 3\r\nConnection: close\r\n\r\n")
    expect(bodyOf(r.text).headers["max-forwards"]).toBe("2")
  })

  it("§10.1.1: Expect: 100-continue gets 100 from the proxy, then the body is relayed", async () => {
    const got = await new Promise<string>((resolve) => {
      const s = connect(proxy.port, "127.0.0.1", () => s.write("POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"))
      let text = ""
      s.on("data", (c) => {
        text += c.toString()
        if (text.startsWith("HTTP/1.1 100") && !text.includes("200")) s.write("hello")
      })
      s.on("close", () => resolve(text))
    })
    expect(got.startsWith("HTTP/1.1 100 Continue")).toBe(true)
    expect(bodyOf(got.slice(got.indexOf("HTTP/1.1 200"))).body).toBe("hello")
  })

  it("§10.1.1: Expect: 100-continue with an oversized Content-Length is refused with 413 before any 100", async () => {
    const r = await send("POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\nExpect: 100-continue\r\n\r\n")
    expect(statusOf(r.text)).toBe(413)
    expect(r.text).not.toContain("100 Continue")
    expect(r.closed).toBe(true)
  })

  it("RFC 9112 §7.1.1/§7.1.2: chunked request with extensions and trailers is de-chunked and its body relayed (trailers dropped)", async () => {
    const r = await send("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4;name=value\r\nWiki\r\n5;x\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n")
    expect(statusOf(r.text)).toBe(200)
    expect(bodyOf(r.text).body).toBe("Wikipedia")
    expect((bodyOf(r.text) as unknown as { trailers: Record<string, string> }).trailers).toEqual({})
  })

  it("RFC 9110 §6.5: response trailers from a chunked upstream response reach the client", async () => {
    const r = await send("GET /trailers HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n")
    expect(r.text).toContain("part1;")
    expect(r.text).toContain("part2")
    expect(r.text.toLowerCase()).toContain("x-checksum: abc123")
  })

  it("RFC 9112 §6.1: a transfer coding before chunked (gzip, chunked) is refused with 501, never relayed without it", async () => {
    const before = origin.seen.length
    for (const te of ["gzip, chunked", "deflate,chunked"]) {
      const r = await send(`POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
      expect(statusOf(r.text), te).toBe(501)
      expect(r.closed, te).toBe(true)
    }
    expect(origin.seen.length).toBe(before)
    // plain chunked, in any case, is relayed
    const ok = await send("POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    expect(bodyOf(ok.text).body).toBe("hello")
  })

  it("RFC 9110 §15.6.6: a request line naming HTTP/2.0 gets 505, never an HTTP/1.1 answer", async () => {
    const before = origin.seen.length
    const r = await send("GET /v2 HTTP/2.0\r\nHost: a\r\n\r\n")
    expect(statusOf(r.text)).toBe(505)
    expect(r.closed).toBe(true)
    expect(origin.seen.length).toBe(before)
  })

  it("§7.6.2: a Max-Forwards beyond 2^53 is still decremented, never rounded up", async () => {
    const r = await send("OPTIONS /x HTTP/1.1\r\nHost: a\r\nMax-Forwards: 99999999999999999999\r\nConnection: close\r\n\r\n")
    expect(bodyOf(r.text).headers["max-forwards"]).toBe(String(Number.MAX_SAFE_INTEGER - 1))
  })

  it("§7.6.3: Via names the protocol version received: 1.0 for an HTTP/1.0 request", async () => {
    const r = await send("GET /v10 HTTP/1.0\r\nHost: a\r\n\r\n")
    expect(bodyOf(r.text).headers["via"]).toBe("1.0 gatehouse")
    const r11 = await send("GET /v11 HTTP/1.1\r\nHost: a\r\nVia: 1.0 edge\r\nConnection: close\r\n\r\n")
    expect(bodyOf(r11.text).headers["via"]).toBe("1.0 edge, 1.1 gatehouse")
  })

  it("§9.3.7: OPTIONS * is answered by the proxy with Allow (it names the server the client talks to)", async () => {
    const before = origin.seen.length
    const r = await send("OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    expect(statusOf(r.text)).toBe(200)
    expect(r.text.toLowerCase()).toContain("allow: get, head")
    expect(origin.seen.length).toBe(before)
  })

  it("RFC 9112 §9.3.2: pipelined requests are answered in order", async () => {
    const r = await send("GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\nGET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    expect(statusesOf(r.text)).toEqual([200, 200, 200])
    const urls = [...r.text.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1])
    expect(urls).toEqual(["/one", "/two", "/three"])
  })
})

describe("RFC 9110 §9.2.2 retries", () => {
  it("a non-idempotent request is never retried after the upstream drops the connection", async () => {
    let attempts = 0
    const dropper = await startRawOrigin((s) => {
      s.once("data", () => {
        attempts++
        s.destroy()
      })
    })
    const proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${dropper.port}` } })
    const r = await rawRequest(proxy.port, "POST /pay HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    expect(statusOf(r.text)).toBe(502)
    expect(attempts).toBe(1)
    await proxy.stop()
    await dropper.close()
  })

  it("an idempotent request without a body is retried once on a reset before any response", async () => {
    let attempts = 0
    const flaky = await startRawOrigin((s) => {
      s.once("data", () => {
        attempts++
        if (attempts === 1) return s.destroy()
        s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
      })
    })
    const proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${flaky.port}` } })
    const r = await rawRequest(proxy.port, "GET /read HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    expect(statusOf(r.text)).toBe(200)
    expect(attempts).toBe(2)
    await proxy.stop()
    await flaky.close()
  })
})
