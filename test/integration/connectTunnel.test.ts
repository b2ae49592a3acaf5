import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import type { ServerResponse } from "node:http"
import { connect, type Socket } from "node:net"
import { sample, scrape } from "../fixtures/metrics.ts"
import { type Origin, startOrigin, startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusesOf, statusOf } from "../fixtures/raw.ts"

/** A client connection kept open: everything it received so far. */
const converse = (port: number) => {
  const c = { text: "", closed: false, sock: undefined as unknown as Socket }
  c.sock = connect({ port, host: "127.0.0.1", allowHalfOpen: true })
  c.sock.on("data", (d: Buffer) => { c.text += d.toString("latin1") })
  c.sock.on("close", () => { c.closed = true })
  c.sock.on("error", () => {})
  return c
}

/** The last access-log entry of a CONNECT to `target`. */
const connectEntry = (proxy: RunningProxy, target: string) =>
  proxy.entries().filter((e) => e["method"] === "CONNECT" && e["url"] === target).at(-1)

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
  /** Resets the connection at its first bytes. */
  let resetter: { port: number; close: () => Promise<void> }
  /** Reads and keeps what it gets, answers nothing. */
  let silent: { port: number; close: () => Promise<void> }
  const silentGot: Array<string> = []
  /** An HTTP origin: `/held` is answered when the test says (`held`), the rest at once. */
  let origin: Origin
  const held = new Map<string, ServerResponse>()
  const sinkDigests: Array<string> = []
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url?.startsWith("/held") === true) held.set(req.url, res)
      else res.end("plain")
    })
    resetter = await startRawOrigin((s) => s.once("data", () => s.resetAndDestroy()))
    silent = await startRawOrigin((s) => {
      const i = silentGot.push("") - 1
      s.on("data", (c: Buffer) => { silentGot[i] += c.toString() })
    })
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
    proxy = await startProxy({ server: { connect: { allowed_ports: [echo.port, sink.port, silent.port, resetter.port, 1] }, timeouts: { idle: "600ms", connect: "500ms" } } })
  })
  afterAll(async () => {
    await proxy.stop()
    await echo.close()
    await sink.close()
    await silent.close()
    await resetter.close()
    await origin.close()
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
  it("RFC 9112 §9.3.2: a CONNECT pipelined behind requests whose responses are pending is answered after them: those responses, then the 200, then tunnel bytes", async () => {
    const c = converse(proxy.port)
    const get = (path: string) => `GET ${origin.url}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`
    c.sock.write(`${get("/held-a1")}${get("/held-a2")}CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\nTUNNELDATA`)
    await expect.poll(() => held.has("/held-a1") && held.has("/held-a2")).toBe(true)
    // room for a proxy that would answer the CONNECT at once to do so: nothing may come before the GETs' answers
    await new Promise((r) => setTimeout(r, 200))
    expect(c.text).toBe("")
    held.get("/held-a1")!.end("first")
    await expect.poll(() => c.text).toContain("\r\n\r\nfirst")
    // (and not after the first one only: Node hands the connection to the second response then)
    await new Promise((r) => setTimeout(r, 200))
    expect(statusesOf(c.text)).toEqual([200])
    held.get("/held-a2")!.end("second")
    await expect.poll(() => c.text).toContain("TUNNELDATA")
    expect(statusesOf(c.text)).toEqual([200, 200, 200])
    const second = c.text.indexOf("\r\n\r\nsecond")
    expect(c.text.indexOf("\r\n\r\nfirst")).toBeLessThan(second)
    expect(second).toBeLessThan(c.text.indexOf("200 Connection Established"))
    expect(c.text.endsWith("\r\n\r\nTUNNELDATA")).toBe(true)
    c.sock.destroy()
  })

  it("RFC 9112 §9.3.2: a refused CONNECT pipelined behind a pending response: that response first (not lost), then the 403", async () => {
    const c = converse(proxy.port)
    c.sock.write(`GET ${origin.url}/held-b HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\nCONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n`)
    await expect.poll(() => held.has("/held-b")).toBe(true)
    await new Promise((r) => setTimeout(r, 200))
    expect(c.text).toBe("")
    held.get("/held-b")!.end("late")
    await expect.poll(() => statusesOf(c.text)).toEqual([200, 403])
    expect(c.text).toContain("\r\n\r\nlate")
    c.sock.destroy()
    // the GET was answered whole: not logged as a client that left
    await expect.poll(() => proxy.entries().filter((e) => e["url"] === `${origin.url}/held-b`).at(-1)).toMatchObject({ status: 200, outcome: "ok" })
  })

  it("RFC 9110 §9.3.6: a client that resets its CONNECT tunnel is logged client_abort, not upstream_reset (the target did nothing wrong)", async () => {
    const target = `127.0.0.1:${silent.port}`
    const before = silentGot.length
    const { sock } = await openTunnel(proxy.port, target)
    sock.write("abc")
    await expect.poll(() => silentGot[before]).toBe("abc")
    sock.resetAndDestroy()
    await expect.poll(() => connectEntry(proxy, target)).toMatchObject({ status: 200, outcome: "client_abort", bytes_in: 3 })
  })

  it("RFC 9110 §9.3.6: a target that resets the tunnel is still logged upstream_reset, the client's connection closed", async () => {
    const target = `127.0.0.1:${resetter.port}`
    const { sock } = await openTunnel(proxy.port, target)
    // (the proxy's FIN or reset: this socket is half-open, so 'end' or 'close')
    const closed = new Promise<void>((resolve) => {
      sock.on("end", () => resolve())
      sock.on("close", () => resolve())
    })
    sock.on("error", () => {})
    sock.write("abc")
    await closed
    await expect.poll(() => connectEntry(proxy, target)).toMatchObject({ status: 200, outcome: "upstream_reset" })
    sock.destroy()
  })

  it("RFC 9110 §9.3.6: a tunnel still open when shutdown_grace runs out is cut and logged interrupted (the client did not leave)", async () => {
    const p = await startProxy({ server: { connect: { allowed_ports: [silent.port] }, timeouts: { shutdown_grace: "200ms" } } })
    const target = `127.0.0.1:${silent.port}`
    const { sock } = await openTunnel(p.port, target)
    sock.on("error", () => {})
    await p.stop()
    expect(connectEntry(p, target)).toMatchObject({ status: 200, outcome: "interrupted" })
    sock.destroy()
  })

  it("RFC 9110 §9.3.6: a tunnel's bytes are its own payload: requests and responses earlier on the keep-alive connection are not counted", async () => {
    const target = `127.0.0.1:${echo.port}`
    const c = converse(proxy.port)
    for (let i = 1; i <= 3; i++) {
      c.sock.write(`GET ${origin.url}/x${i} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`)
      await expect.poll(() => statusesOf(c.text).length).toBe(i)
    }
    c.sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`)
    await expect.poll(() => c.text).toContain("200 Connection Established")
    c.sock.end("ping")
    await expect.poll(() => c.closed).toBe(true)
    expect(c.text.endsWith("\r\n\r\npingbye")).toBe(true)
    await expect.poll(() => connectEntry(proxy, target)).toMatchObject({ status: 200, bytes_in: "ping".length, bytes_out: "pingbye".length })
  })
})

/**
 * A port that never completes a TCP handshake: a child process listens on it with a backlog of 1 and
 * never accepts (its event loop blocked; it exits by itself after a minute should the test not stop it),
 * and connections fill its accept queue, so the kernel drops the SYN of any other (the dial hangs, as
 * to a blackholed host).
 */
const startBlackhole = async (): Promise<{ port: number; close: () => void }> => {
  const script = `const s = require("node:net").createServer().listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
    require("node:fs").writeSync(1, s.address().port + "\\n")
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000)
    process.exit(0)
  })`
  const child: ChildProcess = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] })
  const port = await new Promise<number>((resolve) => child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))))
  // the queue holds backlog + 1 connections (Linux); the others wait unanswered like the proxy's dial
  const fillers: Array<Socket> = []
  await new Promise<void>((resolve) => {
    let connected = 0
    for (let i = 0; i < 4; i++) {
      const f = connect(port, "127.0.0.1", () => { if (++connected === 2) resolve() })
      f.on("error", () => {})
      fillers.push(f)
    }
  })
  return {
    port,
    close: () => {
      for (const f of fillers) f.destroy()
      child.kill()
    }
  }
}

describe("CONNECT: the client leaving while the target is dialled", () => {
  let proxy: RunningProxy
  let blackhole: { port: number; close: () => void }
  beforeAll(async () => {
    blackhole = await startBlackhole()
    proxy = await startProxy({ server: { connect: { allowed_ports: [blackhole.port] }, timeouts: { connect: "3s" } } })
  })
  afterAll(async () => {
    await proxy?.stop()
    blackhole?.close()
  })

  it("RFC 9110 §9.3.6: a client that resets while its CONNECT target is dialled stops the dial at once: logged 499 client_abort, not 504 at timeouts.connect", async () => {
    const target = `127.0.0.1:${blackhole.port}`
    const c = converse(proxy.port)
    c.sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`)
    // the tunnel's fiber runs up to the dial as the CONNECT arrives (an IP target: no lookup)
    await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_active_tunnels", {})).toBe(1)
    c.sock.resetAndDestroy()
    await expect.poll(() => connectEntry(proxy, target), { timeout: 2000 }).toMatchObject({ status: 499, outcome: "client_abort", bytes_out: 0 })
    expect(c.text).toBe("")
  })
})
