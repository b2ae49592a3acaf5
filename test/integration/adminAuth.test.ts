/**
 * /admin/* access control through the real proxy (issue 4; threat: unauthenticated use of the control
 * plane). With `security.admin_token`: `Authorization: Bearer <token>` (RFC 6750 §2.1) else 401;
 * without one: loopback clients only. A non-loopback client is this machine's own non-internal
 * address connecting to a listener on 0.0.0.0.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { networkInterfaces } from "node:os"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { send } from "../fixtures/client.ts"
import { type Origin, startOrigin } from "../fixtures/origins.ts"

const externalV4 = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && !a.internal && a.family === "IPv4")?.address

describe("admin endpoints with security.admin_token", () => {
  let proxy: RunningProxy
  beforeAll(async () => {
    proxy = await startProxy({ server: { host: "0.0.0.0" }, routing: { default_backend: "" }, security: { filters_file: "", admin_token: "s3cret-admin" } })
  })
  afterAll(async () => { await proxy.stop() })

  it("RFC 6750 §3: no Authorization → 401 with WWW-Authenticate: Bearer", async () => {
    const r = await send(proxy.port, "/admin/status")
    expect(r.status).toBe(401)
    expect(r.headers["www-authenticate"]).toMatch(/^Bearer realm=/)
    expect(r.json["error"]).toBe("unauthorized")
  })

  it("RFC 6750 §3.1: a wrong token, or the token in another scheme → 401", async () => {
    for (const value of ["Bearer wrong", "Bearer s3cret-admin2", "Basic czNjcmV0LWFkbWlu", "s3cret-admin"]) {
      expect((await send(proxy.port, "/admin/status", { headers: { authorization: value } })).status, value).toBe(401)
    }
  })

  it("the right Bearer token → 200 with the status document", async () => {
    const r = await send(proxy.port, "/admin/status", { headers: { authorization: "Bearer s3cret-admin" } })
    expect(r.status).toBe(200)
    expect(r.json["status"]).toBe("running")
  })

  it("with a token, the Host a client names does not matter (the token is the check)", async () => {
    const r = await send(proxy.port, "/admin/status", { headers: { host: "proxy.example.net:8080", authorization: "Bearer s3cret-admin" } })
    expect(r.status).toBe(200)
  })

  it.skipIf(externalV4 === undefined)("with a token, a non-loopback client with the right token is admitted (and refused without)", async () => {
    const opts = { connectTo: externalV4!, localAddress: externalV4! }
    expect((await send(proxy.port, "/admin/status", opts)).status).toBe(401)
    expect((await send(proxy.port, "/admin/status", { ...opts, headers: { authorization: "Bearer s3cret-admin" } })).status).toBe(200)
  })
})

describe("admin endpoints without an admin token: loopback only", () => {
  let proxy: RunningProxy
  beforeAll(async () => {
    proxy = await startProxy({ server: { host: "0.0.0.0" }, routing: { default_backend: "" }, security: { filters_file: "" } })
  })
  afterAll(async () => { await proxy.stop() })

  it("any 127.0.0.0/8 client is served", async () => {
    expect((await send(proxy.port, "/admin/status")).status).toBe(200)
    expect((await send(proxy.port, "/admin/status", { localAddress: "127.0.0.7" })).status).toBe(200)
  })

  it("threat: DNS rebinding — a loopback client naming another host (a rebound page's Host) gets 403", async () => {
    for (const host of [`attacker.example:${proxy.port}`, "attacker.example", `localhost.attacker.example:${proxy.port}`]) {
      const r = await send(proxy.port, "/admin/status", { headers: { host, origin: `http://${host}` } })
      expect(r.status, host).toBe(403)
      expect(r.json["detail"], host).toContain("loopback host")
    }
    for (const host of [`localhost:${proxy.port}`, "LOCALHOST", `127.0.0.1:${proxy.port}`, "127.9.9.9", `[::1]:${proxy.port}`]) {
      expect((await send(proxy.port, "/admin/status", { headers: { host } })).status, host).toBe(200)
    }
  })

  it.skipIf(externalV4 === undefined)("threat: remote use of the control plane — a non-loopback client gets 403", async () => {
    const r = await send(proxy.port, "/admin/status", { connectTo: externalV4!, localAddress: externalV4! })
    expect(r.status).toBe(403)
    expect(r.json["detail"]).toContain("security.admin_token")
    // health endpoints stay open to everyone
    expect((await send(proxy.port, "/health/liveness", { connectTo: externalV4!, localAddress: externalV4! })).status).toBe(200)
  })
})

describe("/admin/* belongs to the proxy", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({ routing: { default_backend: origin.url }, security: { filters_file: "", admin_token: "s3cret-admin" } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("threat: credential leak — an /admin/ path no endpoint serves is 404 with the token, never routed to the backend", async () => {
    for (const path of ["/admin/nope", "/admin", "/admin/cache/nope"]) {
      const r = await send(proxy.port, path, { headers: { authorization: "Bearer s3cret-admin" } })
      expect(r.status, path).toBe(404)
      expect(r.json["error"], path).toBe("not_found")
    }
    expect((await send(proxy.port, "/admin/nope")).status).toBe(401)
    expect(origin.seen).toHaveLength(0)
    // the rest of the space is still routed
    expect((await send(proxy.port, "/administrator")).status).toBe(200)
    expect(origin.seen.map((s) => s.url)).toEqual(["/administrator"])
  })
})
