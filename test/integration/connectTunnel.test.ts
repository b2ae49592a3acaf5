import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createHash, randomBytes } from "node:crypto"
import { connect, type Socket } from "node:net"
import { startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

/** Opens a tunnel; resolves with the socket once "200 Connection Established" was read. */
const openTunnel = (proxyPort: number, target: string): Promise<{ sock: Socket; head: string }> =>
  new Promise((resolve, reject) => {
    const sock = connect({ port: proxyPort, host: "127.0.0.1", allowHalfOpen: true }, () => sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`))
    let buf = Buffer.alloc(0)
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      const end = buf.indexOf("\r\n\r\n")
      if (end < 0) return
      sock.off("data", onData)
      const head = buf.subarray(0, end).toString()
      const rest = buf.subarray(end + 4)
      if (rest.length > 0) sock.unshift(rest)
      resolve({ sock, head })
    }
    sock.on("data", onData)
    sock.on("error", reject)
  })

describe("CONNECT tunnels (RFC 9110 §9.3.6)", () => {
  let proxy: RunningProxy
  let echo: { port: number; close: () => Promise<void> }
  let sink: { port: number; close: () => Promise<void> }
  const sinkDigests: Array<string> = []
  beforeAll(async () => {
    // echoes everything; when the client half-closes, says "bye" and closes its side
    echo = await startRawOrigin((s) => {
      s.on("data", (c) => s.write(c))
      s.on("end", () => s.end("bye"))
    })
    // reads everything, answers with the sha256 and byte count after the client's FIN
    sink = await startRawOrigin((s) => {
      const h = createHash("sha256")
      let n = 0
      s.on("data", (c: Buffer) => { h.update(c); n += c.length })
      s.on("end", () => {
        const d = h.digest("hex")
        sinkDigests.push(d)
        s.end(`${d} ${n}`)
      })
    })
    proxy = await startProxy({ server: { connect: { allowed_ports: [echo.port, sink.port, 1] }, timeouts: { idle: "600ms", connect: "500ms" } } })
  })
  afterAll(async () => {
    await proxy.stop()
    await echo.close()
    await sink.close()
  })

  it("answers 200 Connection Established and relays bytes both ways", async () => {
    const { sock, head } = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`)
    expect(head).toMatch(/^HTTP\/1\.1 200 Connection Established/)
    const got = await new Promise<string>((resolve) => {
      sock.once("data", (c) => resolve(c.toString()))
      sock.write("ping")
    })
    expect(got).toBe("ping")
    sock.destroy()
  })

  it("honours half-close: after the client's FIN the server can still send, then close", async () => {
    const { sock } = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`)
    const all = await new Promise<string>((resolve) => {
      let text = ""
      sock.on("data", (c) => (text += c))
      sock.on("end", () => resolve(text))
      sock.write("hello")
      sock.end()
    })
    expect(all).toBe("hellobye")
    sock.destroy()
  })

  it("moves a large upload intact with backpressure (8 MiB, digest checked)", async () => {
    const { sock } = await openTunnel(proxy.port, `127.0.0.1:${sink.port}`)
    const data = randomBytes(8 * 1024 * 1024)
    const expected = createHash("sha256").update(data).digest("hex")
    const reply = await new Promise<string>((resolve) => {
      let text = ""
      sock.on("data", (c) => (text += c))
      sock.on("end", () => resolve(text))
      sock.end(data)
    })
    expect(reply).toBe(`${expected} ${data.length}`)
    sock.destroy()
  })

  it("relays 48 MiB intact, every chunk reported to the Reclaimer (relayed buffers freed young)", async () => {
    const before = proxy.relayedBytes()
    const { sock } = await openTunnel(proxy.port, `127.0.0.1:${sink.port}`)
    const chunk = randomBytes(1024 * 1024)
    const hash = createHash("sha256")
    const reply = new Promise<string>((resolve) => {
      let text = ""
      sock.on("data", (c) => (text += c))
      sock.on("end", () => resolve(text))
    })
    let left = 48
    const pump = () => {
      while (left > 0) {
        left--
        hash.update(chunk)
        if (!sock.write(chunk)) return void sock.once("drain", pump)
      }
      sock.end()
    }
    pump()
    expect(await reply).toBe(`${hash.digest("hex")} ${48 * chunk.length}`)
    // both directions count: 48 MiB up plus the reply
    expect(proxy.relayedBytes() - before).toBeGreaterThanOrEqual(48 * chunk.length)
    sock.destroy()
  })

  it("forwards bytes the client pipelined right after the CONNECT head", async () => {
    const r = await rawRequest(proxy.port, `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\nearly-bytes`)
    expect(r.text).toContain("200 Connection Established")
    expect(r.text).toContain("early-bytes")
  })

  it("the access log counts a tunnel's payload each way, not the CONNECT head or the 200 (early bytes included)", async () => {
    const target = `127.0.0.1:${echo.port}`
    const echoed = await new Promise<string>((resolve) => {
      const sock = connect({ port: proxy.port, host: "127.0.0.1", allowHalfOpen: true }, () => sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\nearly`))
      let text = ""
      sock.on("data", (c: Buffer) => {
        text += c.toString("latin1")
        if (text.endsWith("early") && !text.includes("ping")) sock.end("ping")
      })
      sock.on("close", () => resolve(text.slice(text.indexOf("\r\n\r\n") + 4)))
    })
    expect(echoed).toBe("earlypingbye")
    await new Promise((r) => setTimeout(r, 50))
    const entry = proxy.entries().filter((e) => e["method"] === "CONNECT" && e["url"] === target).at(-1)
    expect(entry?.["bytes_in"]).toBe("earlyping".length)
    expect(entry?.["bytes_out"]).toBe("earlypingbye".length)
  })

  it("a refused CONNECT logs its problem body's bytes out and no bytes in", async () => {
    const r = await rawRequest(proxy.port, "CONNECT 127.0.0.1:23 HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(statusOf(r.text)).toBe(403)
    const body = r.text.slice(r.text.indexOf("\r\n\r\n") + 4)
    const entry = proxy.entries().filter((e) => e["method"] === "CONNECT" && e["url"] === "127.0.0.1:23").at(-1)
    expect(entry?.["bytes_out"]).toBe(Buffer.byteLength(body))
    expect(entry?.["bytes_in"]).toBe(0)
  })

  it("a port outside server.connect.allowed_ports → 403 and nothing dialled", async () => {
    const r = await rawRequest(proxy.port, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(statusOf(r.text)).toBe(403)
    expect(r.text).toContain("server.connect.allowed_ports")
  })

  it("an unreachable target → 502", async () => {
    const r = await rawRequest(proxy.port, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(statusOf(r.text)).toBe(502)
  })

  it("a target that is not host:port → 400", async () => {
    const r = await rawRequest(proxy.port, "CONNECT example.com HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(statusOf(r.text)).toBe(400)
  })

  it("an idle tunnel is closed after server.timeouts.idle and logged", async () => {
    const { sock } = await openTunnel(proxy.port, `127.0.0.1:${echo.port}`)
    const closed = await new Promise<boolean>((resolve) => {
      const guard = setTimeout(() => resolve(false), 5000)
      // the proxy closes its side: FIN reaches this half-open socket as 'end'
      sock.on("end", () => { clearTimeout(guard); resolve(true) })
      sock.on("error", () => {})
    })
    expect(closed).toBe(true)
    await new Promise((r) => setTimeout(r, 50))
    expect(proxy.entries().some((e) => e.method === "CONNECT" && e.status === 200 && e.outcome === "idle_timeout")).toBe(true)
    sock.destroy()
  })
})
