/**
 * Response hardening headers through the real proxy (issue 4; threats: MIME sniffing, clickjacking,
 * content injection, server fingerprinting; RFC 6797 for HSTS). The origin sets some of the same
 * fields itself, to check that they are kept (not duplicated) unless `override: true`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { type Reply, send } from "../fixtures/client.ts"
import { makeCa } from "../fixtures/tls.ts"

/** How many times a field appears in the raw response head. */
const count = (r: Reply, name: string) => r.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === name).length

/** The origin: /own-headers answers with its own X-Frame-Options, CSP, Server and X-Powered-By. */
const startHeaderOrigin = () =>
  startOrigin((req, res) => {
    const own = req.url?.includes("/own-headers") === true
    res.writeHead(200, {
      "content-type": "text/html",
      server: "Apache/2.4.1 (Unix)",
      "x-powered-by": "PHP/5.6",
      ...(own ? { "x-frame-options": "SAMEORIGIN", "content-security-policy": "default-src 'self'" } : {})
    })
    res.end("<p>hi</p>")
  })

describe("security headers, defaults", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startHeaderOrigin()
    proxy = await startProxy({ routing: { default_backend: origin.url }, security: { filters_file: "" } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("threat: MIME sniffing and clickjacking — X-Content-Type-Options: nosniff and X-Frame-Options: DENY by default", async () => {
    const r = await send(proxy.port, "/page")
    expect(r.status).toBe(200)
    expect(r.headers["x-content-type-options"]).toBe("nosniff")
    expect(r.headers["x-frame-options"]).toBe("DENY")
    expect(r.headers["content-security-policy"]).toBeUndefined()
  })

  it("RFC 6797 §7.2: no Strict-Transport-Security over a plain-HTTP client connection", async () => {
    const r = await send(proxy.port, "/page")
    expect(r.headers["strict-transport-security"]).toBeUndefined()
  })

  it("the upstream's own X-Frame-Options / CSP are kept, not duplicated (override: false)", async () => {
    const r = await send(proxy.port, "/own-headers")
    expect(r.headers["x-frame-options"]).toBe("SAMEORIGIN")
    expect(count(r, "x-frame-options")).toBe(1)
    expect(r.headers["content-security-policy"]).toBe("default-src 'self'")
  })

  it("Server and X-Powered-By pass through when `remove` is not configured", async () => {
    const r = await send(proxy.port, "/page")
    expect(r.headers["server"]).toBe("Apache/2.4.1 (Unix)")
    expect(r.headers["x-powered-by"]).toBe("PHP/5.6")
  })

  it("forward-proxy responses get the same headers", async () => {
    const r = await send(proxy.port, `${origin.url}/fwd`)
    expect(r.status).toBe(200)
    expect(r.headers["x-content-type-options"]).toBe("nosniff")
  })
})

describe("security headers, configured (CSP, override, remove, per route, HSTS on TLS)", () => {
  let origin: Origin
  let proxy: RunningProxy
  let tlsProxy: RunningProxy
  let caPem: string
  beforeAll(async () => {
    origin = await startHeaderOrigin()
    const ca = makeCa()
    caPem = ca.caPem
    const leaf = ca.issue("localhost")
    const security = {
      filters_file: "",
      headers: {
        content_security_policy: "default-src 'none'; frame-ancestors 'none'",
        remove: ["Server", "x-powered-by"],
        strict_transport_security: "max-age=63072000"
      }
    }
    const routing = {
      default_backend: origin.url,
      rules: [
        { match: { path_prefix: "/embed" }, forward: { target: origin.url }, headers: { frame_options: "SAMEORIGIN", content_security_policy: "" } },
        { match: { path_prefix: "/force" }, forward: { target: origin.url }, headers: { override: true } },
        { match: { path_prefix: "/raw" }, forward: { target: origin.url }, headers: { enabled: false } }
      ]
    }
    proxy = await startProxy({ routing, security })
    tlsProxy = await startProxy({ routing, security, server: { tls: { enabled: true, cert: leaf.cert, key: leaf.key } } })
  })
  afterAll(async () => {
    await proxy.stop()
    await tlsProxy.stop()
    await origin.close()
  })

  it("threat: content injection — a configured Content-Security-Policy is added", async () => {
    const r = await send(proxy.port, "/page")
    expect(r.headers["content-security-policy"]).toBe("default-src 'none'; frame-ancestors 'none'")
  })

  it("threat: fingerprinting — `remove` drops Server and X-Powered-By (names case-insensitive)", async () => {
    const r = await send(proxy.port, "/page")
    expect(r.headers["server"]).toBeUndefined()
    expect(r.headers["x-powered-by"]).toBeUndefined()
  })

  it("RFC 6797 §7.1: Strict-Transport-Security (configured value) only on the TLS listener", async () => {
    const plain = await send(proxy.port, "/page")
    expect(plain.headers["strict-transport-security"]).toBeUndefined()
    const secure = await send(tlsProxy.port, "/page", { tls: { ca: caPem, servername: "localhost" } })
    expect(secure.status).toBe(200)
    expect(secure.headers["strict-transport-security"]).toBe("max-age=63072000")
    expect(secure.headers["x-content-type-options"]).toBe("nosniff")
  })

  it("per route: `headers:` on a rule is merged over security.headers ('' turns one off)", async () => {
    const r = await send(proxy.port, "/embed/widget")
    expect(r.headers["x-frame-options"]).toBe("SAMEORIGIN")
    expect(r.headers["content-security-policy"]).toBeUndefined()
    expect(r.headers["x-content-type-options"]).toBe("nosniff")
    expect(r.headers["server"]).toBeUndefined()
  })

  it("per route `override: true` replaces the upstream's values, once", async () => {
    const r = await send(proxy.port, "/force/own-headers")
    expect(r.headers["x-frame-options"]).toBe("DENY")
    expect(count(r, "x-frame-options")).toBe(1)
    expect(r.headers["content-security-policy"]).toBe("default-src 'none'; frame-ancestors 'none'")
    expect(count(r, "content-security-policy")).toBe(1)
  })

  it("per route `enabled: false` leaves the upstream response as it is", async () => {
    const r = await send(proxy.port, "/raw/x")
    expect(r.headers["x-frame-options"]).toBeUndefined()
    expect(r.headers["x-content-type-options"]).toBeUndefined()
    expect(r.headers["server"]).toBe("Apache/2.4.1 (Unix)")
  })
})
