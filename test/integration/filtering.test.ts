/**
 * Domain filter and IP ACL against the real proxy over real sockets (issue 4, threat: policy bypass
 * by host spelling; unauthorised clients). Inline rules only (security.filters_file: "").
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { request } from "node:http"
import type { Socket } from "node:net"
import { type Origin, startOrigin, startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

interface Reply {
  readonly status: number
  readonly headers: Record<string, unknown>
  readonly json: Record<string, unknown>
}

/** One request on a fresh connection; `host` is the Host header, `path` origin- or absolute-form. */
const send = (port: number, path: string, host: string, connectTo = "127.0.0.1") =>
  new Promise<Reply>((resolve, reject) => {
    const req = request({ host: connectTo, port, path, headers: { host }, agent: false }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c) => (body += c))
      res.on("end", () => {
        let json: Record<string, unknown> = {}
        try { json = JSON.parse(body) as Record<string, unknown> } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json })
      })
    })
    req.on("error", reject)
    req.end()
  })

describe("domain filter, blocklist (forward, reverse, CONNECT)", () => {
  let origin: Origin
  let proxy: RunningProxy
  let tunnelTarget: { port: number; close: () => Promise<void> }
  const reached: Array<Socket> = []
  beforeAll(async () => {
    origin = await startOrigin()
    tunnelTarget = await startRawOrigin((s) => { reached.push(s); s.end() })
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      server: { connect: { allowed_ports: [443, tunnelTarget.port] } },
      security: {
        filters_file: "",
        filtering: {
          mode: "blocklist",
          domains: { blocked: ["malicious.com", "*.example.com", ".tracker.test", "bücher.de", "localhost"], allowed: ["good.example.com"] }
        }
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
    await tunnelTarget.close()
  })

  it("forward request to a blocked host → 403 with a JSON reason naming the rule; origin never asked", async () => {
    const before = origin.seen.length
    const r = await send(proxy.port, "http://malicious.com/x", "malicious.com")
    expect(r.status).toBe(403)
    expect(r.json).toMatchObject({ error: "blocked", rule: "security.filtering.domains.blocked: malicious.com" })
    expect(String(r.json.detail)).toContain("malicious.com")
    expect(origin.seen.length).toBe(before)
    expect(proxy.entries().at(-1)).toMatchObject({ status: 403, outcome: "Blocked" })
  })

  it("threat: bypass by spelling — EXAMPLE case, trailing dot, percent-escapes, IDN are all caught", async () => {
    for (const url of ["http://MALICIOUS.COM/", "http://malicious.com./", "http://mal%69cious.com/", "http://xn--bcher-kva.de/", "http://BÜCHER.de/"]) {
      const r = await send(proxy.port, encodeURI(url).replace("%25", "%"), "x")
      expect(r.status, url).toBe(403)
    }
  })

  it("wildcard *.example.com: subdomains blocked at any depth, apex and look-alikes pass (reverse Host)", async () => {
    expect((await send(proxy.port, "/", "ads.example.com")).status).toBe(403)
    expect((await send(proxy.port, "/", "a.b.example.com:8080")).status).toBe(403)
    expect((await send(proxy.port, "/", "A.Example.COM.")).json.rule).toBe("security.filtering.domains.blocked: *.example.com")
    expect((await send(proxy.port, "/", "example.com")).status).toBe(200)
    expect((await send(proxy.port, "/", "evil-example.com")).status).toBe(200)
    expect((await send(proxy.port, "/", "example.com.evil.net")).status).toBe(200)
  })

  it("allowed entries are exceptions in blocklist mode; suffix rules cover the apex too", async () => {
    expect((await send(proxy.port, "/", "good.example.com")).status).toBe(200)
    expect((await send(proxy.port, "/", "tracker.test")).status).toBe(403)
    expect((await send(proxy.port, "/", "cdn.tracker.test")).status).toBe(403)
  })

  it("unlisted forward targets pass", async () => {
    const r = await send(proxy.port, `${origin.url}/ok`, "ignored")
    expect(r.status).toBe(200)
  })

  it("CONNECT to a blocked host → 403 before any byte reaches the target", async () => {
    const blocked = await rawRequest(proxy.port, `CONNECT localhost:${tunnelTarget.port} HTTP/1.1\r\nHost: localhost:${tunnelTarget.port}\r\n\r\n`)
    expect(statusOf(blocked.text)).toBe(403)
    expect(blocked.text).toContain("security.filtering.domains.blocked: localhost")
    expect(blocked.closed).toBe(true)
    expect(reached.length).toBe(0)
    // the same target by an unlisted name is dialled: the guard above was the filter, not the network
    const allowed = await rawRequest(proxy.port, `CONNECT 127.0.0.1:${tunnelTarget.port} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
    expect(statusOf(allowed.text)).toBe(200)
    expect(reached.length).toBe(1)
  })

  it("RFC 9112 §3.2: a request with no host name (HTTP/1.0 without Host, empty Host) has nothing to block → default_backend", async () => {
    for (const head of ["GET /no-host HTTP/1.0\r\n\r\n", "GET /empty-host HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"]) {
      const r = await rawRequest(proxy.port, head)
      expect(statusOf(r.text), head).toBe(200)
    }
    expect(origin.seen.map((s) => s.url)).toEqual(expect.arrayContaining(["/no-host", "/empty-host"]))
  })
})

describe("domain filter, allowlist", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      security: {
        filters_file: "",
        filtering: { mode: "allowlist", domains: { allowed: ["*.allowed.test", "127.0.0.1"], blocked: ["bad.allowed.test"] } }
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("only allowed hosts pass; blocked still wins; the apex of a wildcard is not allowed", async () => {
    expect((await send(proxy.port, "/", "app.allowed.test")).status).toBe(200)
    expect((await send(proxy.port, `${origin.url}/`, "x")).status).toBe(200)
    const other = await send(proxy.port, "/", "other.test")
    expect(other.status).toBe(403)
    expect(other.json.rule).toBe("security.filtering.mode: allowlist")
    expect((await send(proxy.port, "/", "allowed.test")).status).toBe(403)
    expect((await send(proxy.port, "/", "bad.allowed.test")).json.rule).toBe("security.filtering.domains.blocked: bad.allowed.test")
  })

  it("a request with no host name (HTTP/1.0 without Host, empty Host) is not in the allowlist → 403", async () => {
    const before = origin.seen.length
    for (const head of ["GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"]) {
      const r = await rawRequest(proxy.port, head)
      expect(statusOf(r.text), head).toBe(403)
      expect(r.text).toContain("security.filtering.mode: allowlist")
    }
    expect(origin.seen.length).toBe(before)
  })
})

describe("IP ACL at accept (IPv4, IPv6, IPv4-mapped IPv6)", () => {
  let origin: Origin
  const proxies: Array<RunningProxy> = []
  const dualStack = async (access_control: Record<string, unknown>) => {
    const p = await startProxy({ server: { host: "::" }, routing: { default_backend: origin.url }, security: { filters_file: "", access_control } })
    proxies.push(p)
    return p
  }
  beforeAll(async () => { origin = await startOrigin() })
  afterAll(async () => {
    for (const p of proxies) await p.stop()
    await origin.close()
  })

  it("an IPv4 deny rule refuses an IPv4 client on a dual-stack listener (::ffff:127.0.0.1) with 403 + close", async () => {
    const proxy = await dualStack({ deny: ["127.0.0.0/8"] })
    const r = await send(proxy.port, "/", "app", "127.0.0.1")
    expect(r.status).toBe(403)
    expect(r.headers.connection).toBe("close")
    expect(r.json).toMatchObject({ error: "blocked", rule: "security.access_control.deny: 127.0.0.0/8" })
    expect((await send(proxy.port, "/", "app", "::1")).status).toBe(200)
    expect(proxy.entries().find((e) => e.status === 403)).toMatchObject({ client_ip: "127.0.0.1", outcome: "Blocked" })
  })

  it("an IPv6 deny rule refuses ::1 and lets IPv4 through", async () => {
    const proxy = await dualStack({ deny: ["::1/128"] })
    expect((await send(proxy.port, "/", "app", "::1")).json.rule).toBe("security.access_control.deny: ::1/128")
    expect((await send(proxy.port, "/", "app", "127.0.0.1")).status).toBe(200)
  })

  it("allow written as IPv4-mapped IPv6 admits IPv4 only; everyone else is not in allow", async () => {
    const proxy = await dualStack({ allow: ["::ffff:127.0.0.0/104"] })
    expect((await send(proxy.port, "/", "app", "127.0.0.1")).status).toBe(200)
    const v6 = await send(proxy.port, "/", "app", "::1")
    expect(v6.status).toBe(403)
    expect(v6.json.rule).toBe("security.access_control.allow")
  })

  it("a denied client is refused for health endpoints and CONNECT too", async () => {
    const proxy = await dualStack({ deny: ["0.0.0.0/0"] })
    expect((await send(proxy.port, "/health/liveness", "app", "127.0.0.1")).status).toBe(403)
    const tunnel = await rawRequest(proxy.port, `CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n`)
    expect(statusOf(tunnel.text)).toBe(403)
    expect(tunnel.text).toContain("security.access_control.deny: 0.0.0.0/0")
  })
})
