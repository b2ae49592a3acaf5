/**
 * Graceful shutdown through the real proxy: a response finished while draining says
 * `Connection: close` (RFC 9112 §9.6) instead of promising a keep-alive the listener will not keep.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect, type Socket } from "node:net"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { startProxy } from "../fixtures/proxy.ts"

const refusesConnections = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, "127.0.0.1")
    s.on("connect", () => { s.destroy(); resolve(false) })
    s.on("error", () => resolve(true))
  })

describe("graceful shutdown", () => {
  let origin: Origin
  let release: () => void = () => {}
  const seenSlow = Promise.withResolvers<void>()
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url !== "/slow") return res.end("ok")
      seenSlow.resolve()
      release = () => {
        res.writeHead(200, { "content-length": 9 })
        res.end("slow-done")
      }
    })
  })
  afterAll(async () => { await origin.close() })

  it("RFC 9112 §9.6: a response finished while draining carries Connection: close, then the connection closes", async () => {
    const proxy = await startProxy({ routing: { default_backend: origin.url }, server: { timeouts: { shutdown_grace: "5s" } } })
    const client: Socket = connect(proxy.port, "127.0.0.1")
    let text = ""
    const closed = new Promise<void>((resolve) => client.on("close", () => resolve()))
    client.on("data", (c: Buffer) => { text += c.toString("latin1") })
    client.write("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    await seenSlow.promise
    const stopping = proxy.stop()
    // draining has begun once the listener refuses new connections
    while (!(await refusesConnections(proxy.port))) await new Promise((r) => setTimeout(r, 10))
    release()
    await closed
    await stopping
    expect(text).toMatch(/^HTTP\/1\.1 200/)
    expect(text).toContain("slow-done")
    expect(text.toLowerCase()).toContain("connection: close")
    expect(text.toLowerCase()).not.toContain("keep-alive")
  })
})
