import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createServer, type Server } from "node:http"
import { connect } from "node:net"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { sample, scrape } from "../fixtures/metrics.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

describe("RFC 9110 §7.8 Upgrade (WebSocket-style)", () => {
  let origin: Server
  let port = 0
  let proxy: RunningProxy
  const seenHeaders: Array<Record<string, unknown>> = []
  const sockets = new Set<{ destroy: () => void }>()
  const held: Array<{ got: string; closed: boolean; answer: () => void }> = []
  beforeAll(async () => {
    origin = createServer((_req, res) => res.end("plain"))
    origin.on("upgrade", (req, sock) => {
      seenHeaders.push(req.headers)
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

  it("an upstream that refuses the upgrade → 502 to the client", async () => {
    const r = await rawRequest(proxy.port, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n")
    expect(statusOf(r.text)).toBe(502)
  })

  it("upgrades are counted in the metrics like any request: 101 relayed, 502 refused, tunnel gauge back to 0", async () => {
    const route = `http://127.0.0.1:${port}`
    const before = await scrape(proxy.metricsPort)
    const switched0 = sample(before, "gatehouse_http_requests_total", { method: "GET", status_class: "1xx", route }) ?? 0
    const failed0 = sample(before, "gatehouse_http_requests_total", { method: "GET", status_class: "5xx", route }) ?? 0
    await new Promise<void>((resolve) => {
      const s = connect(proxy.port, "127.0.0.1", () =>
        s.write("GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n\r\n"))
      s.on("data", (c) => { if (c.toString().includes("\r\n\r\n")) s.end() })
      s.on("close", () => resolve())
      s.on("error", () => resolve())
    })
    const refused = await rawRequest(proxy.port, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n")
    expect(statusOf(refused.text)).toBe(502)
    await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_http_requests_total", { method: "GET", status_class: "1xx", route })).toBe(switched0 + 1)
    const after = await scrape(proxy.metricsPort)
    expect(sample(after, "gatehouse_http_requests_total", { method: "GET", status_class: "5xx", route })).toBe(failed0 + 1)
    await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_active_tunnels", {})).toBe(0)
  })
})
