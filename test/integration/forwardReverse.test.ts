import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { request } from "node:http"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

/** Send a request through the proxy as a forward proxy (absolute-form request-target). */
const viaProxy = (proxyPort: number, url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) =>
  new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const headers = { ...init.headers, ...(init.body === undefined ? {} : { "content-length": String(Buffer.byteLength(init.body)) }) }
    const req = request({ host: "127.0.0.1", port: proxyPort, method: init.method ?? "GET", path: url, headers }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c) => (body += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on("error", reject)
    req.end(init.body)
  })

describe("forward proxy (absolute-form)", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({ routing: { default_backend: "" } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("RFC 9112 §3.2.2: forwards to the URI's origin and replaces Host with the target authority", async () => {
    const res = await viaProxy(proxy.port, `${origin.url}/path?q=1`, { headers: { host: "spoofed.example" } })
    expect(res.status).toBe(200)
    const seen = origin.seen.at(-1)!
    expect(seen.url).toBe("/path?q=1")
    expect(seen.headers.host).toBe(`127.0.0.1:${origin.port}`)
    expect(proxy.entries().at(-1)).toMatchObject({ kind: "forward", status: 200, method: "GET" })
  })

  it("relays every method with its body, streamed both ways", async () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const res = await viaProxy(proxy.port, `${origin.url}/m`, { method, body: `body-of-${method}`, headers: { "content-type": "text/plain" } })
      expect(res.status).toBe(200)
      expect(JSON.parse(res.body)).toMatchObject({ method, body: `body-of-${method}` })
    }
    const head = await viaProxy(proxy.port, `${origin.url}/h`, { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(head.body).toBe("")
  })

  it("RFC 9110 §5.3: a response field's repeated lines (two Set-Cookie) reach the client as two lines", async () => {
    const cookies = await startOrigin((_req, res) => {
      res.setHeader("set-cookie", ["a=1; Path=/", "b=2; Path=/"])
      res.setHeader("x-multi", ["one", "two"])
      res.end("ok")
    })
    try {
      const raw = await rawRequest(proxy.port, `GET ${cookies.url}/c HTTP/1.1\r\nHost: 127.0.0.1:${cookies.port}\r\nConnection: close\r\n\r\n`)
      expect(statusOf(raw.text)).toBe(200)
      const lines = raw.text.split("\r\n")
      expect(lines.filter((l) => l.toLowerCase().startsWith("set-cookie:"))).toEqual(["set-cookie: a=1; Path=/", "set-cookie: b=2; Path=/"])
      // other repeated fields keep their values (Node's client joins them; the wire shows them all)
      expect(lines.filter((l) => l.toLowerCase().startsWith("x-multi:")).map((l) => l.slice(9).trim())).toEqual(["one", "two"])
    } finally {
      await cookies.close()
    }
  })

  it("reuses upstream keep-alive connections (connection pooling)", async () => {
    const ports = new Set<number>()
    const pooled = await startOrigin((req, res) => {
      ports.add(req.socket.remotePort!)
      res.end("ok")
    })
    for (let i = 0; i < 10; i++) await viaProxy(proxy.port, `${pooled.url}/${i}`)
    expect(ports.size).toBe(1)
    await pooled.close()
  })

  it("an origin-form request with no route and no default_backend is 404 with a JSON reason", async () => {
    const res = await fetch(`${proxy.url}/anything`)
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ error: "no_route" })
  })

  it("an absolute-form request naming the proxy itself is served locally, not looped", async () => {
    const res = await viaProxy(proxy.port, `http://127.0.0.1:${proxy.port}/health/liveness`)
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ status: "up" })
  })

  it("an absolute-form target's path goes to its origin as sent: no base path to escape, the dot-segments are the origin's to resolve", async () => {
    const r = await rawRequest(proxy.port, `GET ${origin.url}/a/../b/%2e%2e/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    expect(statusOf(r.text)).toBe(200)
    expect(origin.seen.at(-1)!.url).toBe("/a/../b/%2e%2e/c")
  })

  it("threat: path traversal — an absolute-form target naming the proxy itself (routed like origin-form) that climbs above the root gets 400", async () => {
    const r = await rawRequest(proxy.port, `GET http://127.0.0.1:${proxy.port}/a/../../x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    expect(statusOf(r.text)).toBe(400)
    expect(r.text).toContain("climbs above the root")
  })

  it("RFC 9110 §4.2.4: userinfo in the target is refused with 400", async () => {
    const r = await rawRequest(proxy.port, `GET http://user:pw@127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`)
    expect(statusOf(r.text)).toBe(400)
  })
})

describe("reverse proxy (origin-form)", () => {
  let api: Origin
  let wild: Origin
  let fallback: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    api = await startOrigin()
    wild = await startOrigin()
    fallback = await startOrigin()
    proxy = await startProxy({
      routing: {
        default_backend: fallback.url,
        rules: [
          { match: { host: "api.example.com", path_prefix: "/v1" }, forward: { target: `${api.url}/base` } },
          { match: { host: "*.example.com" }, forward: { target: wild.url } }
        ]
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await Promise.all([api.close(), wild.close(), fallback.close()])
  })

  const get = (host: string, path: string) => rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)

  it("routes by the first rule whose host and path prefix match, keeping the target's base path", async () => {
    expect(statusOf((await get("api.example.com", "/v1/users")).text)).toBe(200)
    expect(api.seen.at(-1)!.url).toBe("/base/v1/users")
    expect(api.seen.at(-1)!.headers.host).toBe(`127.0.0.1:${api.port}`)
  })

  it("wildcard rules match subdomains only; the rest goes to default_backend", async () => {
    await get("deep.sub.example.com", "/x")
    expect(wild.seen.at(-1)!.url).toBe("/x")
    await get("example.com", "/apex")
    await get("evil-example.com", "/lookalike")
    expect(fallback.seen.map((s) => s.url)).toEqual(expect.arrayContaining(["/apex", "/lookalike"]))
  })

  it("sets X-Forwarded-For/-Proto/-Host and Forwarded (RFC 7239) and appends to a prior X-Forwarded-For", async () => {
    await rawRequest(proxy.port, `GET /xf HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n`)
    const h = fallback.seen.at(-1)!.headers
    expect(h["x-forwarded-for"]).toBe("203.0.113.9, 127.0.0.1")
    expect(h["x-forwarded-proto"]).toBe("http")
    expect(h["x-forwarded-host"]).toBe("shop.test")
    expect(h.forwarded).toBe(`for=127.0.0.1;host="shop.test";proto=http`)
    expect(h.via).toBe("1.1 gatehouse")
  })

  it("threat: path traversal out of a backend's base path — RFC 3986 §5.2.4 dot-segments (also %2e) are removed before matching and prefixing; climbing above the root → 400", async () => {
    const before = api.seen.length + wild.seen.length + fallback.seen.length
    for (const path of ["/../secret", "/%2e%2e/secret", "/%2E%2e/secret", "/v1/../../admin", "/v1/%2e%2e/.%2E/x", "/./../x?q=1"]) {
      const r = await get("api.example.com", path)
      expect(statusOf(r.text), path).toBe(400)
      expect(r.text, path).toContain("climbs above the root")
    }
    expect(api.seen.length + wild.seen.length + fallback.seen.length).toBe(before)
    // inside the root: forwarded normalised, under the base path
    expect(statusOf((await get("api.example.com", "/v1/x/../y/./z?a=/../b")).text)).toBe(200)
    expect(api.seen.at(-1)!.url).toBe("/base/v1/y/z?a=/../b")
    // a path prefix is matched on the normalised path: /v1/../other is not under /v1
    const apiBefore = api.seen.length
    expect(statusOf((await get("api.example.com", "/v1/%2e%2e/other")).text)).toBe(200)
    expect(api.seen.length).toBe(apiBefore)
    expect(wild.seen.at(-1)!.url).toBe("/other")
  })

  it("RFC 9112 §3.2: a Host that is not uri-host[:port] gets 400 and reaches no backend (threat: Forwarded / X-Forwarded-Host injection, host-header routing tricks)", async () => {
    const before = api.seen.length + wild.seen.length + fallback.seen.length
    for (const host of [`x", for=6.6.6.6;host="y`, "attacker.com/.example.com", "attacker.com?.example.com", "a b.example.com", "x@y.example.com", "api.example.com:abc"]) {
      const r = await get(host, "/v1/x")
      expect(statusOf(r.text), host).toBe(400)
      expect(r.text, host).toContain("invalid Host")
    }
    expect(api.seen.length + wild.seen.length + fallback.seen.length).toBe(before)
  })

  it("RFC 9112 §3.2: an empty Host is valid and goes to the default backend", async () => {
    const r = await rawRequest(proxy.port, "GET /empty-host HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n")
    expect(statusOf(r.text)).toBe(200)
    expect(fallback.seen.at(-1)!.url).toBe("/empty-host")
  })

  it("control endpoints are answered by the proxy, never routed", async () => {
    const before = fallback.seen.length
    for (const p of ["/health/liveness", "/health/readiness", "/health/startup"]) {
      const r = await fetch(`${proxy.url}${p}`)
      expect(r.status).toBe(200)
    }
    expect(fallback.seen.length).toBe(before)
  })
})

describe("route host normalisation: rule and request hosts compared alike", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({
      routing: {
        default_backend: `${origin.url}/default`,
        rules: [
          { match: { host: "Trailing.Example.NET." }, forward: { target: `${origin.url}/trailing` } },
          { match: { host: "port.example.org:8443" }, forward: { target: `${origin.url}/port` } },
          { match: { host: "example.org:80" }, forward: { target: `${origin.url}/plain` } }
        ]
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  const routedTo = async (host: string) => {
    const r = await rawRequest(proxy.port, `GET /a HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    expect(statusOf(r.text), host).toBe(200)
    return origin.seen.at(-1)!.url
  }

  it("a rule written with a trailing dot (an FQDN) matches the name with or without one", async () => {
    expect(await routedTo("trailing.example.net")).toBe("/trailing/a")
    expect(await routedTo("trailing.example.net.")).toBe("/trailing/a")
  })

  it("a rule with a port matches a Host with a trailing dot before that port", async () => {
    expect(await routedTo("port.example.org.:8443")).toBe("/port/a")
    expect(await routedTo("port.example.org:9443")).toBe("/default/a")
  })

  it("a rule naming the default port matches a Host without a port", async () => {
    expect(await routedTo("example.org")).toBe("/plain/a")
    expect(await routedTo("example.org:80")).toBe("/plain/a")
    expect(await routedTo("example.org:8080")).toBe("/default/a")
  })
})
