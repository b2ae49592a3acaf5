/**
 * The Redis cache backend with a real redis-server: the RFC 9111 behaviour suite (cacheBehaviour.ts),
 * two Gatehouse instances sharing one cache, and Redis dying mid-test (pass-through, then recovery).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type IncomingHttpHeaders, request } from "node:http"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { type RunningRedis, startRedis } from "../fixtures/redis.ts"
import { cacheBehaviour } from "./cacheBehaviour.ts"

cacheBehaviour("redis", async () => {
  const redis = await startRedis()
  return { settings: { backend: "redis", redis_url: redis.url }, close: redis.stop }
})

/** A request with exactly these headers and target (absolute-form for the forward proxy), like curl. */
const send = (proxy: RunningProxy, target: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    request({ host: "127.0.0.1", port: proxy.port, path: target, headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
    }).on("error", reject).end()
  })

describe("redis cache shared by two Gatehouse instances", () => {
  let redis: RunningRedis
  let origin: Origin
  let a: RunningProxy
  let b: RunningProxy
  let n = 0
  beforeAll(async () => {
    redis = await startRedis()
    origin = await startOrigin((req, res) => {
      const body = `${req.url} #${++n}`
      res.writeHead(200, { "content-length": Buffer.byteLength(body), "cache-control": "max-age=300" })
      res.end(body)
    })
    const config = { routing: { default_backend: origin.url }, cache: { enabled: true, backend: "redis", redis_url: redis.url } }
    a = await startProxy(config)
    b = await startProxy(config)
  })
  afterAll(async () => {
    await a.stop()
    await b.stop()
    await origin.close()
    await redis.stop()
  })
  const seen = (path: string) => origin.seen.filter((s) => s.url === path).length
  const stores = async (p: RunningProxy) => ((await (await fetch(`${p.url}/admin/cache/stats`)).json()) as { stores: number }).stores
  /** The response is written to Redis after it was sent: wait until `p` counts the acknowledged write. */
  const written = async (p: RunningProxy, before: number) => expect.poll(() => stores(p)).toBe(before + 1)

  it("a response stored through instance A is a hit through instance B (reverse proxy, same Host)", async () => {
    const before = await stores(a)
    const first = await send(a, "/shared", { host: "shop.example" })
    expect(first.headers["cache-status"]).toBe("gatehouse; fwd=uri-miss; stored")
    await written(a, before)
    const second = await send(b, "/shared", { host: "shop.example" })
    expect(second.body).toBe(first.body)
    expect(second.headers["cache-status"]).toMatch(/^gatehouse; hit; ttl=\d+$/)
    expect(seen("/shared")).toBe(1)
  })

  it("forward proxy: an absolute-form request cached by B is a hit through A", async () => {
    const target = `${origin.url}/forward-shared`
    const before = await stores(b)
    const first = await send(b, target)
    expect(first.headers["cache-status"]).toContain("stored")
    await written(b, before)
    const second = await send(a, target)
    expect(second.body).toBe(first.body)
    expect(second.headers["cache-status"]).toMatch(/hit/)
    expect(seen("/forward-shared")).toBe(1)
  })

  it("admin invalidation on one instance removes the entry for both; stats read the shared store", async () => {
    const before = await stores(a)
    await send(a, "/purge-me", { host: "purge.example" })
    await written(a, before)
    expect((await send(b, "/purge-me", { host: "purge.example" })).headers["cache-status"]).toMatch(/hit/)
    const stats = (await (await fetch(`${b.url}/admin/cache/stats`)).json()) as Record<string, unknown>
    expect(stats).toMatchObject({ enabled: true, backend: "redis", available: true })
    expect(stats.entries).toBeGreaterThanOrEqual(1)
    expect(stats.bytes).toBeGreaterThan(0)
    const del = await fetch(`${a.url}/admin/cache?pattern=purge.example`, { method: "DELETE" })
    expect(await del.json()).toEqual({ pattern: "purge.example", removed: 1 })
    expect((await send(b, "/purge-me", { host: "purge.example" })).headers["cache-status"]).toContain("fwd=uri-miss")
    expect(seen("/purge-me")).toBe(2)
  })

  it("redis killed mid-test: requests pass through to the origin uncached, readiness names it; after a restart caching resumes", async () => {
    const before = await stores(a)
    await send(a, "/outage", { host: "shop.example" })
    await written(a, before)
    expect((await send(b, "/outage", { host: "shop.example" })).headers["cache-status"]).toMatch(/hit/)
    await redis.kill()

    // every request is still answered, from the origin, whichever instance it reaches
    for (const p of [a, b, a, b]) {
      const r = await send(p, "/outage", { host: "shop.example" })
      expect(r.status).toBe(200)
      expect(r.body).toMatch(/^\/outage #\d+$/)
    }
    expect(seen("/outage")).toBe(5)
    const during = await send(a, "/outage", { host: "shop.example" })
    expect(during.headers["cache-status"]).toBe("gatehouse; fwd=miss; detail=backend-unavailable")
    await expect.poll(async () => {
      const r = await fetch(`${a.url}/health/readiness`)
      return { status: r.status, detail: ((await r.json()) as { details?: Record<string, string> }).details?.cache_backend }
    }, { timeout: 5000 }).toMatchObject({ status: 200, detail: expect.stringContaining("redis") })
    const stats = (await (await fetch(`${a.url}/admin/cache/stats`)).json()) as Record<string, unknown>
    expect(stats.available).toBe(false)

    const beforeRestart = await stores(a)
    await redis.restart()
    // the client reconnects on its own (backoff ≤ 2 s): a response is stored again ...
    await expect.poll(async () => (await send(a, "/outage", { host: "shop.example" })).headers["cache-status"], { timeout: 10_000, interval: 200 })
      .toContain("stored")
    await expect.poll(() => stores(a)).toBeGreaterThan(beforeRestart)
    // ... and B's first answer once its own client is back is a hit on what A stored
    let status = ""
    for (let i = 0; i < 50; i++) {
      status = String((await send(b, "/outage", { host: "shop.example" })).headers["cache-status"])
      if (!status.includes("backend-unavailable")) break
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(status).toMatch(/^gatehouse; hit; ttl=\d+$/)
    const after = (await (await fetch(`${a.url}/admin/cache/stats`)).json()) as Record<string, unknown>
    expect(after.available).toBe(true)
    const ready = (await (await fetch(`${b.url}/health/readiness`)).json()) as { details?: Record<string, string> }
    expect(ready.details?.cache_backend).toBeUndefined()
  })
})
