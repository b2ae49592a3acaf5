/**
 * SSRF guard for forward-proxy and CONNECT targets through the real proxy (issue 4; threat: server-side
 * request forgery into loopback services, cloud metadata at 169.254.169.254, and request loops through
 * the proxy's own listener). The fixture allows loopback by default; these tests set
 * `allow_private_destinations` themselves. Every refused target is a live origin that must stay untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createServer } from "node:net"
import { networkInterfaces } from "node:os"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"
import { send } from "../fixtures/client.ts"

const externalV4 = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && !a.internal && a.family === "IPv4")?.address

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer()
    s.listen(0, "0.0.0.0", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

const connect = (proxyPort: number, authority: string) =>
  rawRequest(proxyPort, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`)

describe("SSRF guard, default (allow_private_destinations: [])", () => {
  let origin: Origin
  let proxy: RunningProxy
  let proxyPort: number
  beforeAll(async () => {
    origin = await startOrigin()
    proxyPort = await freePort()
    proxy = await startProxy({
      server: { host: "0.0.0.0", port: proxyPort, connect: { allowed_ports: [443, 80, origin.port, proxyPort] } },
      routing: { default_backend: origin.url },
      security: { filters_file: "", allow_private_destinations: [] }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("threat: SSRF to loopback by DNS name — http://localhost:<port>/ → 403, origin untouched", async () => {
    const before = origin.seen.length
    const r = await send(proxy.port, `http://localhost:${origin.port}/secret`)
    expect(r.status).toBe(403)
    expect(r.json["detail"]).toContain("security.allow_private_destinations")
    expect(origin.seen.length).toBe(before)
  })

  it("threat: SSRF to loopback by literal forms — 127.0.0.1, [::1], 2130706433, 0x7f.1, 127.1, [::ffff:127.0.0.1] → 403", async () => {
    const before = origin.seen.length
    for (const host of ["127.0.0.1", "127.0.0.2", "[::1]", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "0.0.0.0"]) {
      const r = await send(proxy.port, `http://${host}:${origin.port}/secret`)
      expect(r.status, host).toBe(403)
      expect(r.json["detail"], host).toContain("security.allow_private_destinations")
    }
    expect(origin.seen.length).toBe(before)
  })

  it("threat: cloud metadata — http://169.254.169.254/latest/meta-data/ → 403 without dialling", async () => {
    const r = await send(proxy.port, "http://169.254.169.254/latest/meta-data/")
    expect(r.status).toBe(403)
    expect(r.json["detail"]).toContain("169.254.169.254")
  })

  it("threat: cloud metadata in other spellings — octal, decimal, IPv4-mapped and NAT64 IPv6, IPv6 link-local → 403", async () => {
    for (const host of ["0251.0376.0251.0376", "2852039166", "[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]", "[fe80::1]"]) {
      const r = await send(proxy.port, `http://${host}/latest/meta-data/`)
      expect(r.status, host).toBe(403)
      expect(r.json["detail"], host).toContain("security.allow_private_destinations")
    }
  })

  it("RFC 9110 §9.3.6 CONNECT: loopback by name, literal and metadata targets → 403, origin untouched", async () => {
    const before = origin.seen.length
    for (const authority of [`localhost:${origin.port}`, `127.0.0.1:${origin.port}`, `[::1]:${origin.port}`, "169.254.169.254:443", "169.254.169.254:80"]) {
      const r = await connect(proxy.port, authority)
      expect(statusOf(r.text), authority).toBe(403)
    }
    expect(origin.seen.length).toBe(before)
  })

  it("threat: request loop — CONNECT to the proxy's own listener → 403", async () => {
    const r = await connect(proxy.port, `127.0.0.1:${proxyPort}`)
    expect(statusOf(r.text)).toBe(403)
  })

  it.skipIf(externalV4 === undefined)("threat: request loop — forward and CONNECT to the proxy's own non-loopback address → 403 (rule ssrf.self)", async () => {
    const r = await send(proxy.port, `http://${externalV4}:${proxyPort}/x`)
    expect(r.status).toBe(403)
    expect(r.json["detail"]).toContain("ssrf.self")
    expect(statusOf((await connect(proxy.port, `${externalV4}:${proxyPort}`)).text)).toBe(403)
  })

  it("reverse-proxy backends come from config and are trusted: a loopback default_backend still works", async () => {
    expect((await send(proxy.port, "/through-reverse")).status).toBe(200)
  })
})

describe("SSRF guard with allow_private_destinations covering loopback", () => {
  let origin: Origin
  let proxy: RunningProxy
  let proxyPort: number
  beforeAll(async () => {
    origin = await startOrigin()
    proxyPort = await freePort()
    proxy = await startProxy({
      server: { port: proxyPort, connect: { allowed_ports: [origin.port, proxyPort] } },
      routing: { default_backend: "" },
      security: { filters_file: "", allow_private_destinations: ["127.0.0.0/8"] }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("forward to http://localhost:<port>/ and 2130706433 are allowed when the CIDR covers them", async () => {
    expect((await send(proxy.port, `http://localhost:${origin.port}/ok`)).status).toBe(200)
    expect((await send(proxy.port, `http://2130706433:${origin.port}/ok2`)).status).toBe(200)
    expect(origin.seen.map((s) => s.url)).toEqual(expect.arrayContaining(["/ok", "/ok2"]))
  })

  it("the allowance is exactly the listed CIDRs: [::1] and 169.254.169.254 stay refused", async () => {
    expect((await send(proxy.port, `http://[::1]:${origin.port}/no`)).status).toBe(403)
    expect((await send(proxy.port, "http://169.254.169.254/latest/meta-data/")).status).toBe(403)
  })

  it("CONNECT to localhost:<port> is allowed; to the proxy's own listener it stays refused (loop)", async () => {
    // the raw origin answers garbage to a TLS-less tunnel, but the tunnel is established (200)
    expect(statusOf((await connect(proxy.port, `localhost:${origin.port}`)).text)).toBe(200)
    expect(statusOf((await connect(proxy.port, `127.0.0.1:${proxyPort}`)).text)).toBe(403)
  })
})
