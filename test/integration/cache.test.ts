/**
 * The RFC 9111 behaviour suite (cacheBehaviour.ts) on the in-process memory backend, plus what only
 * the memory backend has: the max_memory bound with least-recently-used eviction, and exact stats.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { cacheBehaviour } from "./cacheBehaviour.ts"

cacheBehaviour("memory", async () => ({ settings: { backend: "memory" }, close: async () => {} }))

describe("memory backend: max_memory, LRU eviction, admin patterns and stats", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    // every body is 1000 bytes (/huge: 4000); each entry also counts its headers and key (~1.2 KB in all)
    origin = await startOrigin((req, res) => {
      const url = req.url ?? ""
      const body = url.padEnd(url === "/huge" ? 4000 : 1000, ".")
      const cc = url.startsWith("/swr") ? "max-age=10, stale-while-revalidate=600" : "max-age=300"
      res.writeHead(200, { "content-length": body.length, "cache-control": cc, ...(url.startsWith("/swr") ? { age: "20" } : {}) })
      res.end(body)
    })
    proxy = await startProxy({ routing: { default_backend: origin.url }, cache: { enabled: true, max_memory: "3KB" } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })
  const get = async (path: string) => {
    const r = await fetch(`${proxy.url}${path}`)
    await r.text()
    return r.headers.get("cache-status") ?? ""
  }
  const stats = async () => (await (await fetch(`${proxy.url}/admin/cache/stats`)).json()) as Record<string, number | string | boolean>

  it("max_memory bounds the stored bytes; the least recently used entry is evicted first and counted", async () => {
    expect(await get("/lru/1")).toContain("stored")
    expect(await get("/lru/2")).toContain("stored")
    expect(await get("/lru/1")).toMatch(/hit/) // /lru/1 is now the most recently used
    expect(await get("/lru/3")).toContain("stored") // over 3 KB: /lru/2 goes
    const s = await stats()
    expect(s.evictions).toBe(1)
    expect(s.entries).toBe(2)
    expect(s.bytes).toBeLessThanOrEqual(3 * 1024)
    expect(s.bytes).toBeGreaterThan(2000)
    expect(await get("/lru/1")).toMatch(/hit/)
    expect(await get("/lru/3")).toMatch(/hit/)
    expect(await get("/lru/2")).toContain("fwd=uri-miss")
    expect(origin.seen.filter((r) => r.url === "/lru/2").length).toBe(2)
    expect((await stats()).evictions).toBe(2) // storing /lru/2 again evicted /lru/1
  })

  it("a response larger than max_memory is never stored (and evicts nothing)", async () => {
    const before = await stats()
    const r = await fetch(`${proxy.url}/huge`)
    expect((await r.text()).length).toBe(4000)
    const again = await fetch(`${proxy.url}/huge`)
    expect((await again.text()).length).toBe(4000)
    expect(again.headers.get("cache-status")).toContain("fwd=uri-miss")
    const after = await stats()
    expect(after.evictions).toBe(before.evictions)
    expect(after.entries).toBe(before.entries)
  })

  it("stats: every field, with exact hits, misses, hit ratio, stale serves", async () => {
    await fetch(`${proxy.url}/admin/cache?pattern=*`, { method: "DELETE" })
    const fresh = await startProxy({ routing: { default_backend: origin.url }, cache: { enabled: true, max_memory: "64KB" } })
    try {
      const g = async (p: string) => { const r = await fetch(`${fresh.url}${p}`); await r.text(); return r.headers.get("cache-status") ?? "" }
      await g("/s/a") // miss, stored
      await g("/s/a") // hit
      await g("/s/a") // hit
      await g("/s/b") // miss, stored
      expect(await g("/swr/c")).toContain("stored") // miss, stored already stale
      expect(await g("/swr/c")).toContain("stale-while-revalidate") // hit, stale serve
      const s = (await (await fetch(`${fresh.url}/admin/cache/stats`)).json()) as Record<string, unknown>
      expect(s).toMatchObject({
        enabled: true, backend: "memory", available: true,
        hits: 3, misses: 3, hit_ratio: 0.5, evictions: 0, stale_serves: 1, coalesced_requests: 0
      })
      expect(s.entries).toBe(3)
      expect(s.bytes).toBeGreaterThan(3000)
      expect(Object.keys(s).sort()).toEqual(
        ["available", "backend", "bytes", "coalesced_requests", "enabled", "entries", "evictions", "hit_ratio", "hits", "misses", "stale_serves", "stores"]
      )
    } finally {
      await fresh.stop()
    }
  })

  it("admin patterns: a glob over the host, host:port, host + path, and a pattern matching nothing", async () => {
    const host = `127.0.0.1:${proxy.port}`
    await fetch(`${proxy.url}/admin/cache?pattern=*`, { method: "DELETE" })
    for (const p of ["/img/a.png", "/img/b.png"]) await get(p)
    const del = (pattern: string) =>
      fetch(`${proxy.url}/admin/cache?pattern=${encodeURIComponent(pattern)}`, { method: "DELETE" }).then((r) => r.json() as Promise<{ removed: number }>)
    expect((await del("other.example.com")).removed).toBe(0)
    expect((await del(`127.0.0.1:1/*`)).removed).toBe(0) // another port
    expect((await del(`${host}/img/a.*`)).removed).toBe(1)
    expect(await get("/img/b.png")).toMatch(/hit/)
    expect((await del("127.0.0.?")).removed).toBe(1) // host glob, any port
    expect(await get("/img/b.png")).toContain("fwd=uri-miss")
    expect((await del(`http://${host}/img/*`)).removed).toBe(1) // a scheme prefix is ignored
    expect((await stats()).entries).toBe(0)
    const bad = await fetch(`${proxy.url}/admin/cache?pattern=%20`, { method: "DELETE" })
    expect(bad.status).toBe(400)
    const wrongMethod = await fetch(`${proxy.url}/admin/cache?pattern=x`)
    expect(wrongMethod.status).toBe(405)
    // RFC 9110 §15.5.6: Allow lists what the endpoint does accept
    expect(wrongMethod.headers.get("allow")).toBe("DELETE")
    expect((await fetch(`${proxy.url}/admin/cache/stats`, { method: "POST" })).headers.get("allow")).toBe("GET, HEAD")
  })
})
