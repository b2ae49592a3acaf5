import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createServer, type IncomingHttpHeaders, type Server } from "node:http"
import { connect, type Socket } from "node:net"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { sample, scrape } from "../fixtures/metrics.ts"
import { rawRequest, statusesOf, statusOf } from "../fixtures/raw.ts"

/** A client connection kept open across requests: everything it received so far, and whether it closed. */
const converse = (port: number) => {
  const c = { text: "", closed: false, sock: undefined as unknown as Socket }
  c.sock = connect(port, "127.0.0.1")
  c.sock.on("data", (d: Buffer) => { c.text += d.toString("latin1") })
  c.sock.on("close", () => { c.closed = true })
  c.sock.on("error", () => {})
  return c
}

/** Sends `data` on a new connection and hands back what came once `until` did (the connection may stay open). */
const exchange = async (port: number, data: string, until: string): Promise<string> => {
  const c = converse(port)
  c.sock.write(data)
  await expect.poll(() => c.text).toContain(until)
  c.sock.destroy()
  return c.text
}

/** A new connection to `port` is refused (its listener closed). */
const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => {
      s.destroy()
      resolve(false)
    })
    s.on("error", () => resolve(true))
  })

/** A declined upgrade's answer far larger than the socket buffers: relayed only if backpressure works. */
const BIG = 16 * 1024 * 1024

const DENY = "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: deny-proto\r\n\r\n"

describe("RFC 9110 §7.8 Upgrade (WebSocket-style)", () => {
  let origin: Server
  let port = 0
  let proxy: RunningProxy
  const seenHeaders: Array<Record<string, unknown>> = []
  /** Requests the origin got as plain requests (no upgrade): their headers and bodies. */
  const plain: Array<{ url: string; headers: IncomingHttpHeaders; body: string }> = []
  const sockets = new Set<{ destroy: () => void }>()
  const held: Array<{ got: string; closed: boolean; answer: () => void }> = []
  /** Plain requests (`/held-plain…`) the origin answers when the test says so. */
  const heldPlain = new Map<string, () => void>()
  /** Upgrades the origin declines (401) when the test says so. */
  const heldDenials: Array<() => void> = []
  beforeAll(async () => {
    origin = createServer((req, res) => {
      let body = ""
      req.on("data", (c: Buffer) => { body += c.toString() })
      req.on("end", () => {
        plain.push({ url: req.url ?? "", headers: req.headers, body })
        if (req.url?.startsWith("/held-plain") === true) heldPlain.set(req.url, () => res.end(`plain:${req.url}`))
        else res.end(`plain:${req.url}`)
      })
    })
    origin.on("upgrade", (req, sock) => {
      seenHeaders.push(req.headers)
      if (req.headers.upgrade === "deny-proto") {
        // RFC 9110 §7.8: the server ignores the offer and answers as to any request (a WebSocket
        // handshake refused for want of credentials), then keeps its connection or not, as it likes
        sock.end("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 6\r\n\r\ndenied")
        return
      }
      if (req.headers.upgrade === "big-deny-proto") {
        sock.on("error", () => {})
        const body = Buffer.alloc(BIG, "b")
        sock.end(Buffer.concat([Buffer.from(`HTTP/1.1 403 Forbidden\r\nContent-Length: ${BIG}\r\n\r\n`), body]))
        return
      }
      if (req.headers.upgrade === "interim-deny-proto") {
        sock.end("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\ndenied")
        return
      }
      if (req.headers.upgrade === "interim-echo-proto") {
        sock.write("HTTP/1.1 103 Early Hints\r\nLink: </chat.js>; rel=preload\r\n\r\n")
        sock.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: interim-echo-proto\r\nConnection: Upgrade\r\n\r\n")
        sockets.add(sock)
        sock.on("data", (c) => sock.write(c))
        sock.on("end", () => sock.end())
        return
      }
      if (req.headers.upgrade === "chunked-deny-proto") {
        sock.end("HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nX-Why: policy\r\n\r\n4\r\nnope\r\n0\r\n\r\n")
        return
      }
      if (req.headers.upgrade === "held-deny-proto") {
        sockets.add(sock)
        sock.on("error", () => {})
        heldDenials.push(() => sock.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\ndenied"))
        return
      }
      if (req.headers.upgrade === "held-proto") {
        // answers only when the test says so; reads meanwhile, so it notices the proxy leaving
        const one = { got: "", closed: false, answer: () => sock.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: held-proto\r\nConnection: Upgrade\r\n\r\n") }
        held.push(one)
        sockets.add(sock)
        sock.on("data", (c: Buffer) => { one.got += c.toString() })
        sock.on("end", () => {
          one.closed = true
          sock.end()
        })
        sock.on("error", () => {})
        return
      }
      if (req.headers.upgrade !== "echo-proto") {
        sock.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        return
      }
      sock.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo-proto\r\nConnection: Upgrade\r\nX-Accept: yes\r\n\r\n")
      sockets.add(sock)
      sock.on("data", (c) => sock.write(c))
      sock.on("end", () => sock.end())
    })
    await new Promise<void>((r) => origin.listen(0, "127.0.0.1", () => r()))
    port = (origin.address() as { port: number }).port
    proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${port}` } })
  })
  afterAll(async () => {
    await proxy.stop()
    for (const s of sockets) s.destroy()
    origin.closeAllConnections()
    await new Promise((r) => origin.close(r))
  })

  it("relays a real upgrade: 101 head from the upstream, then bytes both ways", async () => {
    const result = await new Promise<string>((resolve) => {
      const s = connect(proxy.port, "127.0.0.1", () =>
        s.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\nX-Client: 1\r\n\r\n"))
      let text = ""
      s.on("data", (c) => {
        text += c.toString()
        if (text.includes("\r\n\r\n") && !text.includes("marco")) s.write("marco")
        if (text.endsWith("marco")) { s.destroy(); resolve(text) }
      })
      s.on("error", () => resolve(text))
    })
    expect(result).toMatch(/^HTTP\/1\.1 101 Switching Protocols/)
    expect(result.toLowerCase()).toContain("upgrade: echo-proto")
    expect(result.toLowerCase()).toContain("x-accept: yes")
    expect(result.endsWith("marco")).toBe(true)
    const h = seenHeaders.at(-1)!
    expect(h.upgrade).toBe("echo-proto")
    expect(h["x-client"]).toBe("1")
    expect(h.via).toBe("1.1 gatehouse")
    await new Promise((r) => setTimeout(r, 100))
    expect(proxy.entries().some((e) => e.kind === "upgrade" && e.status === 101)).toBe(true)
  })

  it("a client that leaves before the origin answers its Upgrade: the upstream request is aborted and its connection closed", async () => {
    const before = held.length
    const s = connect(proxy.port, "127.0.0.1", () =>
      s.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: held-proto\r\n\r\n"))
    s.on("error", () => {})
    await expect.poll(() => held.length).toBe(before + 1)
    s.destroy()
    // the proxy's read timeout is 30 s: only the client's leaving can close it this soon
    await expect.poll(() => held[before]!.closed, { timeout: 5000 }).toBe(true)
    await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_active_tunnels", {})).toBe(0)
  })

  it("bytes the client sends while the origin has not answered reach the origin after the 101, in order", async () => {
    const before = held.length
    let text = ""
    const s = connect(proxy.port, "127.0.0.1", () =>
      s.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: held-proto\r\n\r\n"))
    s.on("data", (c: Buffer) => { text += c.toString() })
    await expect.poll(() => held.length).toBe(before + 1)
    s.write("early-1,")
    s.write("early-2,")
    const one = held[before]!
    expect(one.got).toBe("")
    one.answer()
    await expect.poll(() => text).toMatch(/^HTTP\/1\.1 101 /)
    s.write("late")
    await expect.poll(() => one.got).toBe("early-1,early-2,late")
    s.destroy()
  })

  it("RFC 9110 §7.8: an origin that declines the upgrade (401 WWW-Authenticate: Bearer) → its answer relayed, body included (was 502)", async () => {
    const text = await exchange(proxy.port, DENY, "denied")
    expect(statusOf(text)).toBe(401)
    expect(text.toLowerCase()).toContain("www-authenticate: bearer")
    expect(text.toLowerCase()).toContain("via: 1.1 gatehouse")
    expect(text.endsWith("\r\n\r\ndenied")).toBe(true)
    // no switch happened: nothing of the offer comes back
    expect(text.toLowerCase()).not.toContain("upgrade:")
    await expect.poll(() => proxy.entries().find((e) => e.kind === "upgrade" && e.status === 401))
      .toMatchObject({ outcome: "upgrade_declined", bytes_out: 6 })
  })

  it("RFC 9110 §7.8: a declined upgrade's chunked answer is relayed whole (framing by the proxy, fields kept)", async () => {
    const text = await exchange(proxy.port, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: chunked-deny-proto\r\n\r\n", "0\r\n\r\n")
    expect(statusOf(text)).toBe(403)
    expect(text.toLowerCase()).toContain("x-why: policy")
    expect(text).toContain("\r\n\r\n4\r\nnope\r\n0\r\n\r\n")
  })

  it("RFC 9110 §15.2: interim responses before an upgrade's answer are forwarded: 103 then 101 (tunnel works), 100 then a declining 401", async () => {
    const c = converse(proxy.port)
    c.sock.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: interim-echo-proto\r\n\r\n")
    await expect.poll(() => statusesOf(c.text)).toEqual([103, 101])
    expect(c.text.toLowerCase()).toContain("link: </chat.js>; rel=preload")
    await expect.poll(() => c.text).toMatch(/\r\n\r\n$/)
    c.sock.write("polo")
    await expect.poll(() => c.text.endsWith("polo")).toBe(true)
    c.sock.destroy()
    const declined = await exchange(proxy.port, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: interim-deny-proto\r\n\r\n", "denied")
    expect(statusesOf(declined)).toEqual([100, 401])
  })

  it("RFC 9110 §7.8: a declined upgrade's large answer flows with backpressure to a client that reads late (no stall)", async () => {
    const c = converse(proxy.port)
    let received = 0
    c.sock.pause()
    c.sock.removeAllListeners("data")
    c.sock.on("data", (d: Buffer) => { received += d.length })
    c.sock.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: big-deny-proto\r\n\r\n")
    // the client reads nothing for a while: the proxy's writes back up and have to wait for 'drain'
    await new Promise((r) => setTimeout(r, 300))
    c.sock.resume()
    await expect.poll(() => received, { timeout: 10_000 }).toBeGreaterThan(BIG)
    c.sock.destroy()
  })

  it("RFC 9112 §9.3: after a declined upgrade the client's connection stays usable: a pipelined request and a later one are answered on it", async () => {
    const c = converse(proxy.port)
    c.sock.write(`${DENY}GET /pipelined HTTP/1.1\r\nHost: app\r\n\r\n`)
    await expect.poll(() => c.text).toContain("plain:/pipelined")
    c.sock.write("GET /later HTTP/1.1\r\nHost: app\r\n\r\n")
    await expect.poll(() => c.text).toContain("plain:/later")
    expect(statusesOf(c.text)).toEqual([401, 200, 200])
    expect(c.text).toContain("Connection: keep-alive")
    expect(c.closed).toBe(false)
    c.sock.destroy()
  })

  it("RFC 9112 §9.3.2: an upgrade pipelined behind a plain request is answered after that request's response, in order", async () => {
    const c = converse(proxy.port)
    c.sock.write(`GET /first HTTP/1.1\r\nHost: app\r\n\r\n${DENY}GET /third HTTP/1.1\r\nHost: app\r\n\r\n`)
    await expect.poll(() => c.text).toContain("plain:/third")
    expect(statusesOf(c.text)).toEqual([200, 401, 200])
    expect(c.text.indexOf("plain:/first")).toBeLessThan(c.text.indexOf("denied"))
    c.sock.destroy()
  })

  it("RFC 9112 §9.3.2: an upgrade pipelined behind two requests whose responses are pending is answered after both", async () => {
    const c = converse(proxy.port)
    c.sock.write(`GET /held-plain-1 HTTP/1.1\r\nHost: app\r\n\r\nGET /held-plain-2 HTTP/1.1\r\nHost: app\r\n\r\n${DENY}`)
    await expect.poll(() => heldPlain.has("/held-plain-1") && heldPlain.has("/held-plain-2")).toBe(true)
    heldPlain.get("/held-plain-1")!()
    await expect.poll(() => c.text).toContain("plain:/held-plain-1")
    // room for a proxy that would answer the upgrade after the first response only to do so
    await new Promise((r) => setTimeout(r, 200))
    expect(statusesOf(c.text)).toEqual([200])
    heldPlain.get("/held-plain-2")!()
    await expect.poll(() => c.text).toContain("denied")
    expect(statusesOf(c.text)).toEqual([200, 200, 401])
    expect(c.text.indexOf("plain:/held-plain-2")).toBeLessThan(c.text.indexOf("denied"))
    c.sock.destroy()
  })

  it("graceful shutdown closes a declined upgrade's connection waiting for its next request, as it closes idle keep-alive ones", async () => {
    const p = await startProxy({ routing: { default_backend: `http://127.0.0.1:${port}` } })
    const waiting = converse(p.port)
    waiting.sock.write(DENY)
    await expect.poll(() => waiting.text).toContain("denied")
    // an upgrade the origin has not answered yet keeps the shutdown waiting for it (up to shutdown_grace)
    const heldBefore = held.length
    const busy = converse(p.port)
    busy.sock.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: held-proto\r\n\r\n")
    await expect.poll(() => held.length).toBe(heldBefore + 1)
    const stopped = p.stop()
    await expect.poll(() => waiting.closed, { timeout: 3000 }).toBe(true)
    expect(busy.closed).toBe(false)
    busy.sock.destroy()
    await stopped
  })

  it("RFC 9112 §9.6: a declined upgrade that asked for Connection: close is answered, then the connection is closed", async () => {
    const r = await rawRequest(proxy.port, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, close\r\nUpgrade: deny-proto\r\n\r\n", 3000)
    expect(statusOf(r.text)).toBe(401)
    expect(r.text).toContain("Connection: close")
    expect(r.closed).toBe(true)
  })

  it("RFC 9110 §7.8: an h2c offer (curl --http2) is not tunnelled: Upgrade and HTTP2-Settings dropped, the request relayed as HTTP/1.1 (was 502)", async () => {
    const upgradesBefore = seenHeaders.length
    const c = converse(proxy.port)
    const h2c = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nX-Kept: 1\r\n\r\n`
    c.sock.write(h2c("/h2c-1"))
    await expect.poll(() => c.text).toContain("plain:/h2c-1")
    // the connection is an ordinary keep-alive one: the next offer on it is treated the same
    c.sock.write(h2c("/h2c-2"))
    await expect.poll(() => c.text).toContain("plain:/h2c-2")
    expect(statusesOf(c.text)).toEqual([200, 200])
    expect(c.text).not.toMatch(/^HTTP\/1\.1 101/m)
    c.sock.destroy()
    expect(seenHeaders.length).toBe(upgradesBefore)
    const got = plain.filter((p) => p.url.startsWith("/h2c-"))
    expect(got.length).toBe(2)
    for (const p of got) {
      expect(p.headers.upgrade).toBeUndefined()
      expect(p.headers["http2-settings"]).toBeUndefined()
      expect(p.headers["x-kept"]).toBe("1")
      expect(p.headers.via).toBe("1.1 gatehouse")
    }
    await expect.poll(() => proxy.entries().filter((e) => String(e.url).startsWith("/h2c-") && e.kind === "reverse" && e.status === 200).length).toBe(2)
  })

  it("RFC 9110 §7.8: an h2c offer in absolute form (curl --http2 -x) goes on as a plain forward request", async () => {
    const text = await exchange(proxy.port, `GET http://127.0.0.1:${port}/h2c-fwd HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n`, "plain:/h2c-fwd")
    expect(statusOf(text)).toBe(200)
    expect(plain.find((p) => p.url === "/h2c-fwd")?.headers.upgrade).toBeUndefined()
  })

  it("RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request is ignored: served as a plain request", async () => {
    const before = seenHeaders.length
    const r = await rawRequest(proxy.port, "GET /ten HTTP/1.0\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n\r\n")
    expect(statusOf(r.text)).toBe(200)
    expect(r.text.endsWith("plain:/ten")).toBe(true)
    expect(seenHeaders.length).toBe(before)
  })

  it("RFC 9110 §7.8: an upgrade request with content is relayed as a plain request, its body read and sent on (never taken for the next request)", async () => {
    const before = seenHeaders.length
    const c = converse(proxy.port)
    c.sock.write("POST /with-body HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\nContent-Length: 11\r\n\r\nhello=world")
    await expect.poll(() => c.text).toContain("plain:/with-body")
    c.sock.write("GET /after-body HTTP/1.1\r\nHost: app\r\n\r\n")
    await expect.poll(() => c.text).toContain("plain:/after-body")
    expect(statusesOf(c.text)).toEqual([200, 200])
    c.sock.destroy()
    expect(seenHeaders.length).toBe(before)
    expect(plain.find((p) => p.url === "/with-body")?.body).toBe("hello=world")
  })

  it("RFC 9110 §7.8: upgrades are counted in the metrics like any request: 101 relayed, a declined one by its status, tunnel gauge back to 0 (also while the declined one's connection stays open)", async () => {
    const route = `http://127.0.0.1:${port}`
    const before = await scrape(proxy.metricsPort)
    const switched0 = sample(before, "gatehouse_http_requests_total", { method: "GET", status_class: "1xx", route }) ?? 0
    const declined0 = sample(before, "gatehouse_http_requests_total", { method: "GET", status_class: "4xx", route }) ?? 0
    await new Promise<void>((resolve) => {
      const s = connect(proxy.port, "127.0.0.1", () =>
        s.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n\r\n"))
      s.on("data", (c) => { if (c.toString().includes("\r\n\r\n")) s.end() })
      s.on("close", () => resolve())
      s.on("error", () => resolve())
    })
    const kept = converse(proxy.port)
    kept.sock.write(DENY)
    await expect.poll(() => kept.text).toContain("denied")
    await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_http_requests_total", { method: "GET", status_class: "1xx", route })).toBe(switched0 + 1)
    await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_http_requests_total", { method: "GET", status_class: "4xx", route })).toBe(declined0 + 1)
    // the declined upgrade's connection is open, kept for the next request: no tunnel
    await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_active_tunnels", {})).toBe(0)
    expect(kept.closed).toBe(false)
    kept.sock.destroy()
    await new Promise((r) => setTimeout(r, 100))
    expect(sample(await scrape(proxy.metricsPort), "gatehouse_active_tunnels", {})).toBe(0)
  })
  it("RFC 9110 §7.8: a client that leaves before the origin's 101 is logged as one that left: 499 client_abort (4xx in the metrics), not status 0 interrupted", async () => {
    const route = `http://127.0.0.1:${port}`
    const c4xx = sample(await scrape(proxy.metricsPort), "gatehouse_http_requests_total", { method: "GET", status_class: "4xx", route }) ?? 0
    const before = held.length
    const s = connect(proxy.port, "127.0.0.1", () =>
      s.write("GET /ws-left HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: held-proto\r\n\r\n"))
    s.on("error", () => {})
    await expect.poll(() => held.length).toBe(before + 1)
    s.destroy()
    await expect.poll(() => proxy.entries().find((e) => e.url === "/ws-left")).toMatchObject({ status: 499, outcome: "client_abort", kind: "upgrade" })
    await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_http_requests_total", { method: "GET", status_class: "4xx", route })).toBe(c4xx + 1)
  })

  it("RFC 9110 §7.8: a client that resets its WebSocket-style tunnel is logged client_abort, not upstream_reset (the origin did nothing wrong)", async () => {
    const c = converse(proxy.port)
    c.sock.write("GET /ws-reset HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n\r\n")
    await expect.poll(() => c.text).toMatch(/^HTTP\/1\.1 101 [^]*\r\n\r\n$/)
    c.sock.write("abc")
    await expect.poll(() => c.text.endsWith("abc")).toBe(true)
    c.sock.resetAndDestroy()
    await expect.poll(() => proxy.entries().find((e) => e.url === "/ws-reset")).toMatchObject({ status: 101, outcome: "client_abort", kind: "upgrade" })
  })

  it("RFC 9110 §7.8: an upgrade's bytes are its tunnel payload: not the requests and responses earlier on the keep-alive connection, its own head or the 101", async () => {
    const c = converse(proxy.port)
    for (let i = 1; i <= 3; i++) {
      c.sock.write(`GET /before-${i} HTTP/1.1\r\nHost: app\r\n\r\n`)
      await expect.poll(() => c.text).toContain(`plain:/before-${i}`)
    }
    c.sock.write("GET /ws-bytes HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n\r\n")
    await expect.poll(() => c.text).toMatch(/HTTP\/1\.1 101 [^]*\r\n\r\n$/)
    c.sock.write("hi")
    await expect.poll(() => c.text.endsWith("\r\n\r\nhi")).toBe(true)
    c.sock.end()
    await expect.poll(() => proxy.entries().find((e) => e.url === "/ws-bytes")).toMatchObject({ status: 101, bytes_in: 2, bytes_out: 2 })
  })

  it("RFC 9112 §9.6: a declined upgrade answered once the shutdown began says Connection: close, and its connection closes after it", async () => {
    const p = await startProxy({ routing: { default_backend: `http://127.0.0.1:${port}` } })
    const before = heldDenials.length
    const c = converse(p.port)
    c.sock.write("GET /ws-drain HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: held-deny-proto\r\n\r\n")
    await expect.poll(() => heldDenials.length).toBe(before + 1)
    const stopped = p.stop()
    // draining: the listener no longer accepts
    await expect.poll(() => refused(p.port)).toBe(true)
    heldDenials[before]!()
    await expect.poll(() => c.text).toContain("denied")
    expect(statusOf(c.text)).toBe(401)
    expect(c.text).toContain("Connection: close")
    await expect.poll(() => c.closed).toBe(true)
    await stopped
  })
})

describe("RFC 9112 §9.3: the connection kept after a declined upgrade waits like an idle keep-alive one", () => {
  let origin: Server
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = createServer((req, res) => res.end(`plain:${req.url}`))
    origin.on("upgrade", (_req, sock) => sock.end("HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\ndenied"))
    await new Promise<void>((r) => origin.listen(0, "127.0.0.1", () => r()))
    const port = (origin.address() as { port: number }).port
    proxy = await startProxy({ server: { timeouts: { read: "300ms", idle: "1500ms" } }, routing: { default_backend: `http://127.0.0.1:${port}` } })
  })
  afterAll(async () => {
    await proxy.stop()
    origin.closeAllConnections()
    await new Promise((r) => origin.close(r))
  })

  it("RFC 9112 §9.3: its next request may come after timeouts.read (no 408: the head timeout starts with the head), and an idle one is closed quietly after timeouts.idle", async () => {
    const c = converse(proxy.port)
    c.sock.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: deny-proto\r\n\r\n")
    await expect.poll(() => c.text).toContain("denied")
    // longer than timeouts.read (300 ms), shorter than timeouts.idle (1500 ms)
    await new Promise((r) => setTimeout(r, 700))
    expect(c.closed).toBe(false)
    c.sock.write("GET /late HTTP/1.1\r\nHost: app\r\n\r\n")
    await expect.poll(() => c.text).toContain("plain:/late")
    expect(statusesOf(c.text)).toEqual([401, 200])
    c.sock.destroy()

    const idle = converse(proxy.port)
    idle.sock.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: deny-proto\r\n\r\n")
    await expect.poll(() => idle.text).toContain("denied")
    await expect.poll(() => idle.closed, { timeout: 5000 }).toBe(true)
    expect(statusesOf(idle.text)).toEqual([401])
  })
})
