/**
 * Graceful shutdown through the real proxy: a response finished while draining says
 * `Connection: close` (RFC 9112 §9.6) instead of promising a keep-alive the listener will not keep.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect, type Socket } from "node:net"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { startProgram, writeTempConfig } from "../fixtures/program.ts"
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
      if (req.url?.startsWith("/never") === true) return // answered by nobody: cut at the end of shutdown_grace
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

  it("requests still in flight when shutdown_grace ends are cut and each still gets its access-log line", async () => {
    const proxy = await startProxy({
      routing: { default_backend: origin.url },
      server: { timeouts: { shutdown_grace: "300ms" } },
      tracing: { enabled: true, otlp_endpoint: "http://127.0.0.1:9/v1/traces", sample_ratio: 0 }
    })
    // both request paths: half sampled (a sampled parent is followed at ratio 0, one fiber per
    // request), half not (the native relay)
    const sampled = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    const clients = Array.from({ length: 6 }, (_, i) => {
      const c = connect(proxy.port, "127.0.0.1")
      c.on("error", () => {})
      c.write(`GET /never?${i} HTTP/1.1\r\nHost: a\r\n${i % 2 === 0 ? sampled : ""}\r\n`)
      return c
    })
    await expect.poll(() => origin.seen.filter((r) => r.url?.startsWith("/never")).length).toBe(6)
    await proxy.stop()
    const cut = proxy.entries().filter((e) => String(e.url).startsWith("/never"))
    expect(cut.length).toBe(6)
    for (const c of clients) c.destroy()
  })

  it("the program (SIGTERM): requests cut when shutdown_grace ends are each logged before it exits", async () => {
    const file = writeTempConfig(
      `server: {port: 0, timeouts: {shutdown_grace: 300ms}}\nrouting: {default_backend: "${origin.url}"}\n` +
        `logging: {format: json}\nmetrics: {enabled: false}\nsecurity: {allow_private_destinations: ["127.0.0.0/8"]}\n`
    )
    const prog = await startProgram(["--config", file])
    const before = origin.seen.filter((r) => r.url?.startsWith("/never")).length
    const clients = Array.from({ length: 4 }, (_, i) => {
      const c = connect(prog.port, "127.0.0.1")
      c.on("error", () => {})
      c.write(`GET /never-prog?${i} HTTP/1.1\r\nHost: a\r\n\r\n`)
      return c
    })
    await expect.poll(() => origin.seen.filter((r) => r.url?.startsWith("/never")).length).toBe(before + 4)
    prog.child.kill("SIGTERM")
    expect(await prog.exited).toBe(0)
    const lines = prog.output().split("\n").filter((l) => l.includes('"type":"access"') && l.includes("/never-prog"))
    expect(lines.length).toBe(4)
    for (const c of clients) c.destroy()
  })
})
