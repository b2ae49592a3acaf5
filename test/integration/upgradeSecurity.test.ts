/**
 * Upgrade requests (RFC 9110 §7.8, WebSocket-style) pass the same access checks as any request
 * (issue 4; threat: bypassing the IP ACL, domain filter, rate limit, proxy auth and SSRF guard by
 * adding `Upgrade:` to a request).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import bcrypt from "bcryptjs"
import { createServer, type Server } from "node:http"
import type { Duplex } from "node:stream"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusesOf, statusOf } from "../fixtures/raw.ts"
import { EICAR } from "../../src/domain/signatureScanner.ts"
import { basic } from "../fixtures/client.ts"
import { makeCa } from "../fixtures/tls.ts"

let origin: Server
let originPort = 0
const upgrades: Array<string> = []
const upgradeHeaders: Array<Record<string, unknown>> = []
const sockets = new Set<Duplex>()

beforeAll(async () => {
  origin = createServer((_req, res) => res.end("plain"))
  origin.on("upgrade", (req, sock: Duplex) => {
    upgrades.push(req.url ?? "")
    upgradeHeaders.push(req.headers)
    sockets.add(sock)
    sock.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo-proto\r\nConnection: Upgrade\r\n\r\n")
    sock.on("data", (c) => sock.write(c))
    sock.on("error", () => {})
    sock.on("end", () => sock.end())
  })
  await new Promise<void>((r) => origin.listen(0, "127.0.0.1", () => r()))
  originPort = (origin.address() as { port: number }).port
})
afterAll(async () => {
  for (const s of sockets) s.destroy()
  origin.closeAllConnections()
  await new Promise((r) => origin.close(r))
})

const upgrade = (proxyPort: number, target: string, host: string, extra = "") =>
  rawRequest(proxyPort, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n${extra}\r\n`, 800)

describe("Upgrade requests meet the access checks", () => {
  let proxy: RunningProxy
  afterAll(async () => { await proxy?.stop() })

  it("threat: SSRF via Upgrade — a forward-form upgrade to loopback → 403, origin untouched", async () => {
    proxy = await startProxy({ routing: { default_backend: "" }, security: { filters_file: "", allow_private_destinations: [] } })
    const before = upgrades.length
    const r = await upgrade(proxy.port, `http://localhost:${originPort}/ws-ssrf`, `localhost:${originPort}`)
    expect(statusOf(r.text)).toBe(403)
    expect(upgrades.length).toBe(before)
    await proxy.stop()
  })

  it("threat: open proxy via Upgrade — a forward-form upgrade without Proxy-Authorization → 407; with it → 101", async () => {
    proxy = await startProxy({ routing: { default_backend: "" }, security: { filters_file: "", proxy_auth: { users: { alice: bcrypt.hashSync("pw", 4) } } } })
    const before = upgrades.length
    const refused = await upgrade(proxy.port, `http://127.0.0.1:${originPort}/ws-auth`, `127.0.0.1:${originPort}`)
    expect(statusOf(refused.text)).toBe(407)
    expect(refused.text.toLowerCase()).toContain("proxy-authenticate: basic")
    expect(upgrades.length).toBe(before)
    const ok = await upgrade(proxy.port, `http://127.0.0.1:${originPort}/ws-auth`, `127.0.0.1:${originPort}`, `Proxy-Authorization: ${basic("alice", "pw")}\r\n`)
    expect(statusOf(ok.text)).toBe(101)
    await proxy.stop()
  })

  it("threat: h2c smuggling (an accepted Upgrade: h2c would tunnel HTTP/2 past every per-request check) → the offer is dropped, the origin sees a plain request", async () => {
    proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${originPort}` }, security: { filters_file: "" } })
    const before = upgrades.length
    // this origin switches to anything it is offered
    const r = await rawRequest(proxy.port, "GET /h2c-smuggle HTTP/1.1\r\nHost: app\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", 800)
    expect(statusOf(r.text)).toBe(200)
    expect(r.text.endsWith("plain")).toBe(true)
    expect(upgrades.length).toBe(before)
    await proxy.stop()
  })

  it("RFC 6585 §4: upgrades spend the client's rate-limit budget → 429", async () => {
    proxy = await startProxy({
      routing: { default_backend: `http://127.0.0.1:${originPort}` },
      security: { filters_file: "", rate_limiting: { requests_per_second: 0.01, burst: 1, exempt: [] } }
    })
    expect(statusOf((await upgrade(proxy.port, "/ws-rl", "app")).text)).toBe(101)
    expect(statusOf((await upgrade(proxy.port, "/ws-rl", "app")).text)).toBe(429)
    await proxy.stop()
  })

  it("threat: filter bypass via Upgrade — a blocked Host and a denied client IP → 403", async () => {
    proxy = await startProxy({
      routing: { default_backend: `http://127.0.0.1:${originPort}` },
      security: { filters_file: "", filtering: { domains: { blocked: ["blocked.test"] } }, access_control: { deny: ["127.0.0.9/32"] } }
    })
    const before = upgrades.length
    expect(statusOf((await upgrade(proxy.port, "/ws-f", "blocked.test")).text)).toBe(403)
    const denied = await new Promise<string>((resolve) => {
      import("node:net").then(({ connect }) => {
        const s = connect({ port: proxy.port, host: "127.0.0.1", localAddress: "127.0.0.9" }, () =>
          s.write("GET /ws-acl HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n\r\n"))
        let text = ""
        s.on("data", (c) => (text += c.toString()))
        s.on("close", () => resolve(text))
        s.on("error", () => resolve(text))
        setTimeout(() => { s.destroy(); resolve(text) }, 800)
      })
    })
    expect(statusOf(denied)).toBe(403)
    expect(upgrades.length).toBe(before)
    // an allowed host still upgrades
    expect(statusOf((await upgrade(proxy.port, "/ws-ok", "app")).text)).toBe(101)
    await proxy.stop()
  })
})

describe("Upgrade on the TLS listener", () => {
  it("RFC 7239 / X-Forwarded-Proto: an upgrade received over TLS is forwarded as https", async () => {
    const ca = makeCa()
    const leaf = ca.issue("localhost")
    const proxy = await startProxy({
      routing: { default_backend: `http://127.0.0.1:${originPort}` },
      security: { filters_file: "" },
      server: { tls: { enabled: true, cert: leaf.cert, key: leaf.key } }
    })
    try {
      const { connect } = await import("node:tls")
      const text = await new Promise<string>((resolve) => {
        const s = connect({ host: "127.0.0.1", port: proxy.port, servername: "localhost", ca: ca.caPem }, () =>
          s.write("GET /ws-tls HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n\r\n"))
        let out = ""
        s.on("data", (c) => {
          out += c.toString()
          if (out.includes("\r\n\r\n")) { s.destroy(); resolve(out) }
        })
        s.on("error", () => resolve(out))
      })
      expect(statusOf(text)).toBe(101)
      const h = upgradeHeaders[upgrades.lastIndexOf("/ws-tls")]!
      expect(h["x-forwarded-proto"]).toBe("https")
      expect(String(h["forwarded"])).toContain("proto=https")
    } finally {
      await proxy.stop()
    }
  })
})

describe("an Upgrade the origin declines (RFC 9110 §7.8) meets the response checks of any response", () => {
  let decliner: Server
  let declinerPort = 0
  beforeAll(async () => {
    decliner = createServer((req, res) => res.end(`plain:${req.url}`))
    decliner.on("upgrade", (req, sock: Duplex) => {
      const body = req.url === "/ws-eicar" ? Buffer.from(EICAR, "latin1") : Buffer.from("denied")
      sock.end(Buffer.concat([Buffer.from(`HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`), body]))
    })
    await new Promise<void>((r) => decliner.listen(0, "127.0.0.1", () => r()))
    declinerPort = (decliner.address() as { port: number }).port
  })
  afterAll(async () => {
    decliner.closeAllConnections()
    await new Promise((r) => decliner.close(r))
  })

  it("threat: malware in a declined upgrade's answer (content inspection bypass) → 403, the body never delivered", async () => {
    const proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${declinerPort}` }, security: { filters_file: "" } })
    try {
      const r = await upgrade(proxy.port, "/ws-eicar", "app")
      expect(statusOf(r.text)).toBe(403)
      expect(r.text).toContain("\"error\":\"blocked\"")
      expect(r.text).not.toContain(EICAR.slice(0, 20))
      // a clean answer is relayed as it came
      const clean = await upgrade(proxy.port, "/ws-clean", "app")
      expect(statusOf(clean.text)).toBe(401)
      expect(clean.text.endsWith("denied")).toBe(true)
    } finally {
      await proxy.stop()
    }
  })

  it("RFC 9112 §9.3 on the TLS listener: the declined upgrade's connection goes on serving requests", async () => {
    const ca = makeCa()
    const leaf = ca.issue("localhost")
    const proxy = await startProxy({
      routing: { default_backend: `http://127.0.0.1:${declinerPort}` },
      security: { filters_file: "" },
      server: { tls: { enabled: true, cert: leaf.cert, key: leaf.key } }
    })
    try {
      const { connect } = await import("node:tls")
      const text = await new Promise<string>((resolve) => {
        let out = ""
        const s = connect({ host: "127.0.0.1", port: proxy.port, servername: "localhost", ca: ca.caPem }, () =>
          s.write("GET /ws-tls-deny HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo-proto\r\n\r\n"))
        s.on("data", (c: Buffer) => {
          out += c.toString()
          if (out.endsWith("denied")) s.write("GET /after-tls HTTP/1.1\r\nHost: app\r\n\r\n")
          if (out.endsWith("plain:/after-tls")) { s.destroy(); resolve(out) }
        })
        s.on("error", () => resolve(out))
        s.on("close", () => resolve(out))
      })
      expect(statusesOf(text)).toEqual([401, 200])
      expect(text.toLowerCase()).toContain("strict-transport-security")
    } finally {
      await proxy.stop()
    }
  })
})
