import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createServer, type Server } from "node:http"
import { connect } from "node:net"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

describe("RFC 9110 §7.8 Upgrade (WebSocket-style)", () => {
  let origin: Server
  let port = 0
  let proxy: RunningProxy
  const seenHeaders: Array<Record<string, unknown>> = []
  const sockets = new Set<{ destroy: () => void }>()
  beforeAll(async () => {
    origin = createServer((_req, res) => res.end("plain"))
    origin.on("upgrade", (req, sock) => {
      seenHeaders.push(req.headers)
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

  it("an upstream that refuses the upgrade → 502 to the client", async () => {
    const r = await rawRequest(proxy.port, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\n")
    expect(statusOf(r.text)).toBe(502)
  })
})
