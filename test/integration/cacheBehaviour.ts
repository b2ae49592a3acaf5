/**
 * The RFC 9111 shared cache through the real proxy: one behaviour suite, run against every backend
 * (cache.test.ts: memory, cacheRedis.test.ts: a real redis-server). Each test uses its own paths on
 * one programmable origin and names the section it checks.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from "node:http"
import { gunzipSync } from "node:zlib"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

/** GET with exactly these headers (no fetch() additions). */
const plainGet = (url: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    request(url, { headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
    }).on("error", reject).end()
  })

/** A request to the proxy with exactly this target (absolute-form: the forward proxy) and these headers, like curl -x. */
const sendVia = (p: RunningProxy, target: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    request({ host: "127.0.0.1", port: p.port, path: target, headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    }).on("error", reject).end()
  })

type Handler = (req: IncomingMessage, res: ServerResponse) => void
const routes = new Map<string, Handler>()
const hits = (origin: Origin, path: string) => origin.seen.filter((s) => s.url === path).length

const reply = (status: number, headers: Record<string, string | number>, body = "") => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { "content-length": Buffer.byteLength(body), ...headers })
  res.end(body)
}
/** An origin route whose body counts the requests it served ("v1", "v2", ...). */
const counting = (headers: Record<string, string>) => {
  let n = 0
  return (_req: IncomingMessage, res: ServerResponse) => {
    const body = `v${++n}`
    res.writeHead(200, { "content-length": body.length, ...headers })
    res.end(body)
  }
}

/** Backend settings merged into `cache:` of every proxy the suite starts (and how to undo them). */
export interface CacheBackendFixture {
  readonly settings: Record<string, unknown>
  readonly close: () => Promise<void>
}

export const cacheBehaviour = (backend: string, fixture: () => Promise<CacheBackendFixture>) =>
describe(`cache (RFC 9111) through the proxy, ${backend} backend`, () => {
  let origin: Origin
  let proxy: RunningProxy
  let small: RunningProxy
  let zipped: RunningProxy
  let store: CacheBackendFixture
  beforeAll(async () => {
    store = await fixture()
    origin = await startOrigin((req, res) => {
      const h = routes.get(req.url ?? "")
      if (h === undefined) {
        res.writeHead(404, { "content-length": 0 })
        res.end()
      } else h(req, res)
    })
    proxy = await startProxy({ routing: { default_backend: origin.url }, cache: { enabled: true, ...store.settings } })
    small = await startProxy({ routing: { default_backend: origin.url }, cache: { enabled: true, max_object_size: "1KB", default_ttl: "60s", ...store.settings } })
    zipped = await startProxy({ routing: { default_backend: origin.url }, cache: { enabled: true, ...store.settings }, compression: { enabled: true, min_size: "1KB" } })
  })
  afterAll(async () => {
    await proxy.stop()
    await small.stop()
    await zipped.stop()
    await origin.close()
    await store.close()
  })
  const get = (path: string, headers: Record<string, string> = {}, p: RunningProxy = proxy) => fetch(`${p.url}${path}`, { headers })

  it("§4.2.1 a response with max-age is stored; the next request is a hit with Age and Cache-Status (RFC 9211)", async () => {
    routes.set("/fresh", counting({ "cache-control": "max-age=300" }))
    const a = await get("/fresh")
    expect(await a.text()).toBe("v1")
    expect(a.headers.get("cache-status")).toBe("gatehouse; fwd=uri-miss; stored")
    const b = await get("/fresh")
    expect(await b.text()).toBe("v1")
    expect(b.headers.get("cache-status")).toMatch(/^gatehouse; hit; ttl=\d+$/)
    expect(Number(b.headers.get("age"))).toBeGreaterThanOrEqual(0)
    expect(b.headers.get("via")).toBe("1.1 gatehouse")
    expect(hits(origin, "/fresh")).toBe(1)
  })

  it("RFC 9211 Cache-Status 'stored' is true when the client has the response: the very next request hits (30 keys)", async () => {
    const misses: Array<string> = []
    for (let i = 0; i < 30; i++) {
      const path = `/stored-now/${i}`
      routes.set(path, counting({ "cache-control": "max-age=300" }))
      // keep-alive (fetch): the next request goes out as soon as the first response has ended
      const a = await get(path)
      expect(await a.text()).toBe("v1")
      expect(a.headers.get("cache-status")).toBe("gatehouse; fwd=uri-miss; stored")
      const b = await get(path)
      await b.text()
      if (!String(b.headers.get("cache-status")).includes("hit")) misses.push(`${path}: ${b.headers.get("cache-status")}`)
    }
    expect(misses).toEqual([])
  })

  it("§4.2.3 Age counts the upstream's Age header: a hit reports at least that age", async () => {
    routes.set("/aged", counting({ "cache-control": "max-age=300", age: "100" }))
    await (await get("/aged")).text()
    const b = await get("/aged")
    expect(Number(b.headers.get("age"))).toBeGreaterThanOrEqual(100)
    expect(b.headers.get("cache-status")).toMatch(/ttl=(19\d|200)$/)
  })

  it("§4.2.1 Expires − Date gives the freshness lifetime; an invalid Expires means already stale", async () => {
    const now = Date.now()
    routes.set("/expires", counting({ date: new Date(now).toUTCString(), expires: new Date(now + 120_000).toUTCString() }))
    routes.set("/expires-bad", counting({ expires: "0", etag: '"x"' }))
    await (await get("/expires")).text()
    expect((await get("/expires")).headers.get("cache-status")).toMatch(/hit/)
    await (await get("/expires-bad")).text()
    await (await get("/expires-bad")).text()
    expect(hits(origin, "/expires-bad")).toBe(2)
  })

  it("§5.2.2.5 no-store and §5.2.2.7 private are never stored by a shared cache", async () => {
    routes.set("/nostore", counting({ "cache-control": "no-store, max-age=300" }))
    routes.set("/private", counting({ "cache-control": "private, max-age=300" }))
    for (const p of ["/nostore", "/private"]) {
      const a = await get(p)
      await a.text()
      expect(a.headers.get("cache-status")).toContain(p === "/nostore" ? "detail=no-store" : "detail=private")
      expect(await (await get(p)).text()).toBe("v2")
    }
  })

  it("§5.2.2.1 s-maxage wins over max-age for a shared cache", async () => {
    routes.set("/smaxage", counting({ "cache-control": "max-age=0, s-maxage=300" }))
    await (await get("/smaxage")).text()
    expect(await (await get("/smaxage")).text()).toBe("v1")
  })

  it("§3 only cacheable methods: POST is forwarded and marked fwd=method; 206 is never stored (§3.3)", async () => {
    routes.set("/post", counting({ "cache-control": "max-age=300" }))
    const a = await fetch(`${proxy.url}/post`, { method: "POST", body: "x" })
    await a.text()
    expect(a.headers.get("cache-status")).toBe("gatehouse; fwd=method")
    routes.set("/partial", reply(206, { "cache-control": "max-age=300", "content-range": "bytes 0-1/10" }, "ab"))
    const p = await get("/partial")
    await p.text()
    expect(p.headers.get("cache-status")).toContain("detail=partial")
    await (await get("/partial")).text()
    expect(hits(origin, "/partial")).toBe(2)
  })

  it("§3.3 a Range request bypasses the cache and is never stored", async () => {
    routes.set("/range", counting({ "cache-control": "max-age=300" }))
    const a = await get("/range", { range: "bytes=0-0" })
    await a.text()
    expect(a.headers.get("cache-status")).toBe("gatehouse; fwd=bypass; detail=range")
    await (await get("/range")).text()
    expect(hits(origin, "/range")).toBe(2)
  })

  it("§3.5 a request with Authorization is stored only when the response says public, s-maxage or must-revalidate", async () => {
    routes.set("/auth-plain", counting({ "cache-control": "max-age=300" }))
    routes.set("/auth-public", counting({ "cache-control": "public, max-age=300" }))
    const a = await get("/auth-plain", { authorization: "Bearer t" })
    await a.text()
    expect(a.headers.get("cache-status")).toContain("detail=authorization")
    await (await get("/auth-plain", { authorization: "Bearer t" })).text()
    expect(hits(origin, "/auth-plain")).toBe(2)
    await (await get("/auth-public", { authorization: "Bearer t" })).text()
    expect(await (await get("/auth-public", { authorization: "Bearer t" })).text()).toBe("v1")
  })

  it("§4.1 Vary: one stored variant per value set; Vary: * never matches", async () => {
    routes.set("/vary", (req, res) => {
      const body = `lang=${req.headers["accept-language"] ?? "-"}`
      res.writeHead(200, { "content-length": body.length, "cache-control": "max-age=300", vary: "Accept-Language" })
      res.end(body)
    })
    routes.set("/vary-star", counting({ "cache-control": "max-age=300", vary: "*" }))
    expect(await (await get("/vary", { "accept-language": "en" })).text()).toBe("lang=en")
    const de = await get("/vary", { "accept-language": "de" })
    expect(await de.text()).toBe("lang=de")
    expect(de.headers.get("cache-status")).toContain("fwd=vary-miss")
    const en2 = await get("/vary", { "accept-language": "en" })
    expect(await en2.text()).toBe("lang=en")
    expect(en2.headers.get("cache-status")).toMatch(/hit/)
    expect(await (await get("/vary", { "accept-language": "de" })).text()).toBe("lang=de")
    expect(hits(origin, "/vary")).toBe(2)
    await (await get("/vary-star")).text()
    expect(await (await get("/vary-star")).text()).toBe("v2")
  })

  it("§4.3.1/§4.3.4 a stale entry is revalidated with If-None-Match; the 304's headers are merged into the stored response", async () => {
    let n = 0
    routes.set("/validate", (req, res) => {
      n++
      if (req.headers["if-none-match"] === '"e1"') {
        res.writeHead(304, { etag: '"e1"', "cache-control": "max-age=300", "x-version": `h${n}` })
        res.end()
        return
      }
      res.writeHead(200, { "content-length": 4, etag: '"e1"', "cache-control": "max-age=0", "x-version": `h${n}` })
      res.end("body")
    })
    await (await get("/validate")).text()
    const b = await get("/validate")
    expect(b.status).toBe(200)
    expect(await b.text()).toBe("body")
    expect(b.headers.get("x-version")).toBe("h2")
    expect(b.headers.get("cache-status")).toContain("fwd-status=304")
    const seen = origin.seen.filter((s) => s.url === "/validate")
    expect(seen[1]?.headers["if-none-match"]).toBe('"e1"')
    // the merged Cache-Control (max-age=300) now makes it fresh
    const c = await get("/validate")
    expect(c.headers.get("cache-status")).toMatch(/hit/)
    expect(c.headers.get("x-version")).toBe("h2")
    expect(hits(origin, "/validate")).toBe(2)
  })

  // fetch() adds "Cache-Control: no-cache" to any conditional request (Fetch standard, cache mode
  // "no-store"), which forbids a hit: the plain http client sends only what the test says, like curl.
  it("RFC 9110 §13.1.2 a client's matching If-None-Match on a hit gets 304 from the cache", async () => {
    routes.set("/cond", reply(200, { "cache-control": "max-age=300", etag: '"c1"' }, "cond"))
    await (await get("/cond")).text()
    const b = await plainGet(`${proxy.url}/cond`, { "if-none-match": '"c1"' })
    expect(b.status).toBe(304)
    expect(b.body).toBe("")
    expect(b.headers["cache-status"]).toMatch(/hit/)
    expect(b.headers["etag"]).toBe('"c1"')
    const other = await plainGet(`${proxy.url}/cond`, { "if-none-match": '"zz", W/"c2"' })
    expect(other.status).toBe(200)
    expect(other.body).toBe("cond")
    expect(hits(origin, "/cond")).toBe(1)
  })

  it("RFC 9110 §13.1.3 a client's If-Modified-Since on a hit: 304 when not modified since, 200 when modified", async () => {
    const lm = new Date(Date.UTC(2024, 0, 1)).toUTCString()
    routes.set("/cond-ims", reply(200, { "cache-control": "max-age=300", "last-modified": lm }, "ims"))
    await (await get("/cond-ims")).text()
    expect((await plainGet(`${proxy.url}/cond-ims`, { "if-modified-since": lm })).status).toBe(304)
    const older = new Date(Date.UTC(2023, 0, 1)).toUTCString()
    const b = await plainGet(`${proxy.url}/cond-ims`, { "if-modified-since": older })
    expect(b.status).toBe(200)
    expect(b.body).toBe("ims")
    expect(hits(origin, "/cond-ims")).toBe(1)
  })

  it("RFC 9111 §4.3.2 a conditional no-cache request: the cache revalidates with its own validators and evaluates the client's", async () => {
    // this origin ignores conditionals (always 200): the cache must still answer the client's If-None-Match
    routes.set("/cond-nc", counting({ "cache-control": "max-age=300", etag: '"n1"' }))
    await (await get("/cond-nc")).text()
    const b = await get("/cond-nc", { "if-none-match": '"n1"' }) // fetch adds Cache-Control: no-cache
    expect(b.status).toBe(304)
    expect(await b.text()).toBe("")
    expect(b.headers.get("cache-status")).toContain("fwd=request; fwd-status=200; stored")
    expect(origin.seen.filter((s) => s.url === "/cond-nc")[1]?.headers["cache-control"]).toBe("no-cache")
    // the new 200 was stored although the client got a 304
    const c = await plainGet(`${proxy.url}/cond-nc`)
    expect(c.body).toBe("v2")
    expect(c.headers["cache-status"]).toMatch(/hit/)
    // a non-matching client validator gets the full response
    const d = await get("/cond-nc", { "if-none-match": '"other"' })
    expect(d.status).toBe(200)
    expect(await d.text()).toBe("v3")
  })

  it("§4.4 a successful unsafe method invalidates the stored response for its target URI", async () => {
    routes.set("/inval", (req, res) => {
      if (req.method === "POST") return reply(204, {})(req, res)
      counting({ "cache-control": "max-age=300" })(req, res)
    })
    let n = 0
    routes.set("/inval", (req, res) => {
      if (req.method === "POST") {
        res.writeHead(204)
        res.end()
        return
      }
      const body = `v${++n}`
      res.writeHead(200, { "content-length": body.length, "cache-control": "max-age=300" })
      res.end(body)
    })
    expect(await (await get("/inval")).text()).toBe("v1")
    expect(await (await get("/inval")).text()).toBe("v1")
    await (await fetch(`${proxy.url}/inval`, { method: "POST", body: "x" })).text()
    expect(await (await get("/inval")).text()).toBe("v2")
  })

  it("§5.2.1.4 request no-cache, §5.2.1.1 max-age=0 and §5.4 Pragma: no-cache go to the origin", async () => {
    routes.set("/reqcc", counting({ "cache-control": "max-age=300" }))
    await (await get("/reqcc")).text()
    const a = await get("/reqcc", { "cache-control": "no-cache" })
    expect(await a.text()).toBe("v2")
    expect(a.headers.get("cache-status")).toContain("fwd=request")
    expect(await (await get("/reqcc", { "cache-control": "max-age=0" })).text()).toBe("v3")
    expect(await (await get("/reqcc", { pragma: "no-cache" })).text()).toBe("v4")
    expect(await (await get("/reqcc", { "cache-control": "max-age=3600" })).text()).toBe("v4")
  })

  it("§5.2.1.3 min-fresh and §5.2.1.2 max-stale", async () => {
    routes.set("/minfresh", counting({ "cache-control": "max-age=100" }))
    await (await get("/minfresh")).text()
    expect(await (await get("/minfresh", { "cache-control": "min-fresh=500" })).text()).toBe("v2")
    routes.set("/maxstale", counting({ "cache-control": "max-age=10", age: "20" }))
    await (await get("/maxstale")).text()
    const s = await get("/maxstale", { "cache-control": "max-stale=60" })
    expect(await s.text()).toBe("v1")
    expect(s.headers.get("cache-status")).toContain("detail=max-stale")
  })

  it("§5.2.1.7 only-if-cached with nothing stored → 504", async () => {
    const r = await get("/never-seen", { "cache-control": "only-if-cached" })
    expect(r.status).toBe(504)
    expect(r.headers.get("cache-status")).toContain("only-if-cached")
    expect(hits(origin, "/never-seen")).toBe(0)
  })

  it("§4.2.2 heuristic freshness is off by default (default_ttl 0) and applies default_ttl when set", async () => {
    routes.set("/heuristic", counting({}))
    await (await get("/heuristic")).text()
    const a = await get("/heuristic")
    expect(await a.text()).toBe("v2")
    expect(a.headers.get("cache-status")).toContain("detail=no-freshness")
    routes.set("/heuristic-on", counting({}))
    await (await get("/heuristic-on", {}, small)).text()
    expect(await (await get("/heuristic-on", {}, small)).text()).toBe("v1")
  })

  it("RFC 5861 §3 stale-while-revalidate: the stale response is served at once and refreshed in the background", async () => {
    routes.set("/swr", counting({ "cache-control": "max-age=10, stale-while-revalidate=600", age: "20" }))
    await (await get("/swr")).text()
    const b = await get("/swr")
    expect(await b.text()).toBe("v1")
    expect(b.headers.get("cache-status")).toContain("detail=stale-while-revalidate")
    await expect.poll(() => hits(origin, "/swr")).toBe(2)
  })

  it("RFC 5861 §4 stale-if-error: a 503 (or a dead origin) is replaced by the stale response; must-revalidate forbids it (§4.2.4)", async () => {
    let fail = false
    routes.set("/sie", (req, res) => {
      if (fail) return reply(503, {}, "down")(req, res)
      reply(200, { "cache-control": "max-age=10, stale-if-error=600", age: "20" }, "good")(req, res)
    })
    routes.set("/sie-mr", (req, res) => {
      if (fail) return reply(503, {}, "down")(req, res)
      reply(200, { "cache-control": "max-age=10, stale-if-error=600, must-revalidate", age: "20" }, "good")(req, res)
    })
    await (await get("/sie")).text()
    await (await get("/sie-mr")).text()
    fail = true
    const a = await get("/sie")
    expect(a.status).toBe(200)
    expect(await a.text()).toBe("good")
    expect(a.headers.get("cache-status")).toContain("detail=stale-if-error")
    const b = await get("/sie-mr")
    expect(b.status).toBe(503)
    await b.text()
  })

  it("coalescing: concurrent misses for one key make one upstream request; the others are served the stored result", async () => {
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => { release = r })
    routes.set("/coalesce", (_req, res) => {
      void gate.then(() => {
        res.writeHead(200, { "content-length": 4, "cache-control": "max-age=300" })
        res.end("once")
      })
    })
    const pending = Array.from({ length: 8 }, () => get("/coalesce"))
    await expect.poll(() => hits(origin, "/coalesce")).toBe(1)
    release()
    const responses = await Promise.all(pending)
    expect(await Promise.all(responses.map((r) => r.text()))).toEqual(Array(8).fill("once"))
    expect(responses.filter((r) => r.headers.get("cache-status")?.includes("; collapsed")).length).toBe(7)
    expect(hits(origin, "/coalesce")).toBe(1)
  })

  it("coalescing: when the leader's response is uncacheable the followers make their own requests", async () => {
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => { release = r })
    routes.set("/coalesce-nostore", (_req, res) => {
      void gate.then(() => {
        res.writeHead(200, { "content-length": 2, "cache-control": "no-store" })
        res.end("ok")
      })
    })
    const pending = Array.from({ length: 4 }, () => get("/coalesce-nostore"))
    await expect.poll(() => hits(origin, "/coalesce-nostore")).toBe(1)
    release()
    const responses = await Promise.all(pending)
    expect(await Promise.all(responses.map((r) => r.text()))).toEqual(Array(4).fill("ok"))
    expect(hits(origin, "/coalesce-nostore")).toBe(4)
    expect(responses.filter((r) => r.headers.get("cache-status")?.includes("collapsed=?0")).length).toBe(3)
  })

  it("coalescing: when the leader's client leaves before its response, no follower is stranded: each is answered", async () => {
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => { release = r })
    routes.set("/coalesce-left", (_req, res) => {
      void gate.then(() => {
        if (res.destroyed) return
        res.writeHead(200, { "content-length": 4, "cache-control": "max-age=300" })
        res.end("late")
      })
    })
    const leaving = new AbortController()
    const leader = fetch(`${proxy.url}/coalesce-left`, { signal: leaving.signal }).then(() => "answered", (e: Error) => e.name)
    await expect.poll(() => hits(origin, "/coalesce-left")).toBe(1)
    const followers = [get("/coalesce-left"), get("/coalesce-left")]
    leaving.abort()
    expect(await leader).toBe("AbortError")
    // The leader's exchange is aborted and stores nothing. A follower already waiting is released at
    // once and goes upstream itself; one that arrives after the abort leads or follows anew.
    await expect.poll(() => hits(origin, "/coalesce-left"), { timeout: 5000 }).toBeGreaterThanOrEqual(2)
    release()
    const responses = await Promise.all(followers)
    expect(await Promise.all(responses.map((r) => r.text()))).toEqual(["late", "late"])
    expect(hits(origin, "/coalesce-left")).toBeLessThanOrEqual(3)
  })

  it("max_object_size: a larger body streams through whole and is not stored", async () => {
    const big = "x".repeat(4096)
    routes.set("/big", reply(200, { "cache-control": "max-age=300" }, big))
    routes.set("/big-chunked", (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=300" })
      res.write(big.slice(0, 800))
      setTimeout(() => res.end(big.slice(800)), 5)
    })
    const a = await get("/big", {}, small)
    expect((await a.text()).length).toBe(4096)
    expect(a.headers.get("cache-status")).toContain("detail=too-large")
    expect((await (await get("/big-chunked", {}, small)).text()).length).toBe(4096)
    expect((await (await get("/big-chunked", {}, small)).text()).length).toBe(4096)
    expect(hits(origin, "/big-chunked")).toBe(2)
  })

  it("RFC 9211 §2.5 'stored' is never claimed for a body of unknown length: a chunked body over max_object_size is not stored and not said to be", async () => {
    const big = "x".repeat(4096)
    routes.set("/big-chunked-status", (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=300" })
      res.write(big.slice(0, 800))
      setTimeout(() => res.end(big.slice(800)), 5)
    })
    const a = await get("/big-chunked-status", {}, small)
    expect((await a.text()).length).toBe(4096)
    expect(a.headers.get("cache-status")).toBe("gatehouse; fwd=uri-miss")
    const b = await get("/big-chunked-status", {}, small)
    await b.text()
    expect(b.headers.get("cache-status")).toBe("gatehouse; fwd=uri-miss")
    // a chunked body that does fit is stored all the same (the next request hits), just not announced
    routes.set("/small-chunked-status", (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=300" })
      res.write("sm")
      setTimeout(() => res.end("all"), 5)
    })
    const c = await get("/small-chunked-status", {}, small)
    expect(await c.text()).toBe("small")
    expect(c.headers.get("cache-status")).toBe("gatehouse; fwd=uri-miss")
    const d = await get("/small-chunked-status", {}, small)
    expect(await d.text()).toBe("small")
    expect(d.headers.get("cache-status")).toMatch(/^gatehouse; hit; ttl=\d+$/)
  })

  it("threat: cache poisoning across forward and reverse — a Host naming another origin never shares an entry with that origin's absolute URI (RFC 9111 §4, RFC 9112 §3.2)", async () => {
    const other = await startOrigin((req, res) => {
      const body = `genuine ${req.url}`
      res.writeHead(200, { "content-length": body.length, "cache-control": "max-age=300" })
      res.end(body)
    })
    try {
      const authority = `127.0.0.1:${other.port}`
      routes.set("/poison-rev", reply(200, { "cache-control": "max-age=300" }, "default backend"))
      routes.set("/poison-fwd", reply(200, { "cache-control": "max-age=300" }, "default backend"))
      // origin-form with a Host naming the other origin: routing sends it to the default backend
      const rev = await plainGet(`${proxy.url}/poison-rev`, { host: authority })
      expect(rev.body).toBe("default backend")
      expect(rev.headers["cache-status"]).toContain("stored")
      // the forward proxy's request for that origin's URI must reach the origin, not that entry
      const fwd = await sendVia(proxy, `http://${authority}/poison-rev`)
      expect(fwd.body.toString()).toBe("genuine /poison-rev")
      expect(fwd.headers["cache-status"]).toContain("fwd=uri-miss")
      // and the other way round: a forward entry never answers the routed request
      expect((await sendVia(proxy, `http://${authority}/poison-fwd`)).body.toString()).toBe("genuine /poison-fwd")
      const rev2 = await plainGet(`${proxy.url}/poison-fwd`, { host: authority })
      expect(rev2.body).toBe("default backend")
      expect(rev2.headers["cache-status"]).toContain("fwd=uri-miss")
      // each still hits its own entry
      expect((await sendVia(proxy, `http://${authority}/poison-rev`)).headers["cache-status"]).toMatch(/hit/)
      expect((await plainGet(`${proxy.url}/poison-fwd`, { host: authority })).headers["cache-status"]).toMatch(/hit/)
      expect(other.seen.map((r) => r.url)).toEqual(["/poison-rev", "/poison-fwd"])
    } finally {
      await other.close()
    }
  })

  it("threat: request loop — a forward request to the proxy's own listener stays refused (403) when a routed response for that Host is stored", async () => {
    routes.set("/own-loop", reply(200, { "cache-control": "max-age=300" }, "routed"))
    // 127.0.0.2 is not how this listener names itself, so absolute-form with it is a forward request,
    // which the SSRF guard refuses (README: always the proxy's own listener); origin-form with that Host is routed
    const authority = `127.0.0.2:${proxy.port}`
    const routed = await plainGet(`${proxy.url}/own-loop`, { host: authority })
    expect(routed.body).toBe("routed")
    expect(routed.headers["cache-status"]).toContain("stored")
    const loop = await sendVia(proxy, `http://${authority}/own-loop`)
    expect(loop.status).toBe(403)
    expect(hits(origin, "/own-loop")).toBe(1)
    await (await fetch(`${proxy.url}/admin/cache?pattern=127.0.0.2`, { method: "DELETE" })).text()
  })

  it("an absolute-form request naming the proxy itself shares the stored response of the origin-form request it is served as", async () => {
    routes.set("/self-key", counting({ "cache-control": "max-age=300" }))
    const authority = `127.0.0.1:${proxy.port}`
    const first = await plainGet(`${proxy.url}/self-key`, { host: authority })
    expect(first.headers["cache-status"]).toContain("stored")
    const again = await sendVia(proxy, `http://${authority}/self-key`)
    expect(again.body.toString()).toBe("v1")
    expect(again.headers["cache-status"]).toMatch(/hit/)
    expect(hits(origin, "/self-key")).toBe(1)
  })

  it("threat: cache poisoning by a Host holding a '/' — 'Host: a/b' + '/c' is refused (400, RFC 9112 §3.2), never stored under the key of 'Host: a' + '/b/c' (RFC 9110 §7.2)", async () => {
    routes.set("/c", reply(200, { "cache-control": "max-age=300" }, "routed for Host a/b"))
    routes.set("/b/c", counting({ "cache-control": "max-age=300" }))
    const a = await plainGet(`${proxy.url}/c`, { host: "slash.example/b" })
    expect(a.status).toBe(400)
    expect(a.body).not.toContain("routed for Host a/b")
    const b = await plainGet(`${proxy.url}/b/c`, { host: "slash.example" })
    expect(b.body).toBe("v1")
    expect(b.headers["cache-status"]).toContain("fwd=uri-miss")
    await (await fetch(`${proxy.url}/admin/cache?pattern=slash.example`, { method: "DELETE" })).text()
  })

  it("§4.4 / admin purge right after a store: the stored response stays removed (a write still on its way does not bring it back)", async () => {
    routes.set("/purge-race", counting({ "cache-control": "max-age=300" }))
    const host = { host: "purge-race.example" }
    const a = await plainGet(`${proxy.url}/purge-race`, host)
    expect(a.headers["cache-status"]).toBe("gatehouse; fwd=uri-miss; stored")
    const del = await fetch(`${proxy.url}/admin/cache?pattern=purge-race.example`, { method: "DELETE" })
    expect(await del.json()).toEqual({ pattern: "purge-race.example", removed: 1 })
    const b = await plainGet(`${proxy.url}/purge-race`, host)
    expect(b.body).toBe("v2")
    expect(b.headers["cache-status"]).toContain("fwd=uri-miss")
    await (await fetch(`${proxy.url}/admin/cache?pattern=purge-race.example`, { method: "DELETE" })).text()
  })

  it("RFC 9211: a 502 for an unreachable origin carries the cache's Cache-Status (fwd=uri-miss, no fwd-status)", async () => {
    const r = await sendVia(proxy, "http://127.0.0.1:1/cache-status-502")
    expect(r.status).toBe(502)
    expect(r.headers["cache-status"]).toBe("gatehouse; fwd=uri-miss")
  })

  it("§5.2.1.2 max-stale is served from an entry without a validator once it is stale (kept for a bounded stale window)", async () => {
    routes.set("/maxstale-noval", counting({ "cache-control": "max-age=10", age: "20" }))
    await (await get("/maxstale-noval")).text()
    // past the shortest time any entry is kept (1 s), which used to be all a stale entry without a validator got
    await new Promise((r) => setTimeout(r, 1300))
    const s = await get("/maxstale-noval", { "cache-control": "max-stale=600" })
    expect(await s.text()).toBe("v1")
    expect(s.headers.get("cache-status")).toContain("detail=max-stale")
    expect(hits(origin, "/maxstale-noval")).toBe(1)
  })

  it("§4.3.4 a compressed entry with a strong ETag is refreshed by the origin's 304 (the stored copy carries the weak form)", async () => {
    const text = "compressible text ".repeat(200)
    routes.set("/gz-reval", (req, res) => {
      const inm = String(req.headers["if-none-match"] ?? "")
      if (inm.replace(/^W\//, "") === '"g1"') {
        res.writeHead(304, { etag: '"g1"', "cache-control": "max-age=300", "x-version": "after-304" })
        res.end()
        return
      }
      res.writeHead(200, { "content-type": "text/plain", "content-length": text.length, etag: '"g1"', "cache-control": "max-age=10", age: "20", "x-version": "first" })
      res.end(text)
    })
    const gz = { "accept-encoding": "gzip" }
    const a = await sendVia(zipped, "/gz-reval", gz)
    expect(a.headers["content-encoding"]).toBe("gzip")
    expect(a.headers.etag).toBe('W/"g1"')
    const b = await sendVia(zipped, "/gz-reval", gz)
    expect(b.status).toBe(200)
    expect(b.headers["cache-status"]).toContain("fwd=stale; fwd-status=304; stored")
    expect(b.headers["x-version"]).toBe("after-304")
    expect(b.headers["content-encoding"]).toBe("gzip")
    expect(b.headers.etag).toBe('W/"g1"')
    expect(String(b.headers.vary)).toContain("Accept-Encoding")
    expect(gunzipSync(b.body).toString()).toBe(text)
    expect(origin.seen.filter((s) => s.url === "/gz-reval")[1]?.headers["if-none-match"]).toBe('W/"g1"')
    const c = await sendVia(zipped, "/gz-reval", gz)
    expect(c.headers["cache-status"]).toMatch(/^gatehouse; hit; ttl=\d+$/)
    expect(c.headers.etag).toBe('W/"g1"')
    expect(gunzipSync(c.body).toString()).toBe(text)
    expect(hits(origin, "/gz-reval")).toBe(2)
  })

  it("RFC 5861 §3 stale-while-revalidate refreshes a compressed entry with a strong ETag from the origin's 304", async () => {
    const text = "compressible text ".repeat(200)
    routes.set("/gz-swr", (req, res) => {
      if (String(req.headers["if-none-match"] ?? "").replace(/^W\//, "") === '"s1"') {
        res.writeHead(304, { etag: '"s1"', "cache-control": "max-age=300" })
        res.end()
        return
      }
      res.writeHead(200, { "content-type": "text/plain", "content-length": text.length, etag: '"s1"', "cache-control": "max-age=10, stale-while-revalidate=600", age: "20" })
      res.end(text)
    })
    const gz = { "accept-encoding": "gzip" }
    await sendVia(zipped, "/gz-swr", gz)
    const b = await sendVia(zipped, "/gz-swr", gz)
    expect(b.headers["cache-status"]).toContain("detail=stale-while-revalidate")
    await expect.poll(() => hits(origin, "/gz-swr")).toBe(2)
    // the background 304 made the stored gzip copy fresh again
    await expect.poll(async () => String((await sendVia(zipped, "/gz-swr", gz)).headers["cache-status"])).toMatch(/^gatehouse; hit; ttl=\d+$/)
    expect(hits(origin, "/gz-swr")).toBe(2)
  })

  it("§4.1 Accept-Encoding lists that get the same coding share one stored variant (gzip, 'gzip, deflate', 'gzip, br;q=0.5', ...)", async () => {
    const text = "compressible text ".repeat(200)
    routes.set("/ae-lists", reply(200, { "content-type": "text/plain", "cache-control": "max-age=300" }, text))
    const lists = ["gzip", "gzip, deflate", "gzip, compress", "gzip, br;q=0.5", "gzip, zstd;q=0.1", "x-gzip, deflate;q=0.5"]
    const statuses: Array<string> = []
    for (const ae of lists) {
      const r = await sendVia(zipped, "/ae-lists", { "accept-encoding": ae })
      expect(r.headers["content-encoding"]).toBe("gzip")
      expect(gunzipSync(r.body).toString()).toBe(text)
      statuses.push(String(r.headers["cache-status"]).replace(/ttl=\d+/, "ttl"))
    }
    expect(statuses).toEqual(["gatehouse; fwd=uri-miss", ...Array(lists.length - 1).fill("gatehouse; hit; ttl")])
    expect(hits(origin, "/ae-lists")).toBe(1)
  })

  it("HEAD is answered from a stored GET response, without a body", async () => {
    routes.set("/head", reply(200, { "cache-control": "max-age=300" }, "hello"))
    await (await get("/head")).text()
    const h = await fetch(`${proxy.url}/head`, { method: "HEAD" })
    expect(h.status).toBe(200)
    expect(h.headers.get("content-length")).toBe("5")
    expect(h.headers.get("cache-status")).toMatch(/hit/)
    expect(hits(origin, "/head")).toBe(1)
  })

  it("admin: DELETE /admin/cache?pattern= removes matching entries and reports how many; stats count hits and misses", async () => {
    routes.set("/adm/a", reply(200, { "cache-control": "max-age=300" }, "a"))
    routes.set("/adm/b", reply(200, { "cache-control": "max-age=300" }, "b"))
    routes.set("/other", reply(200, { "cache-control": "max-age=300" }, "o"))
    for (const p of ["/adm/a", "/adm/b", "/other"]) await (await get(p)).text()
    const host = `127.0.0.1:${proxy.port}`
    const del = await fetch(`${proxy.url}/admin/cache?pattern=${encodeURIComponent(`${host}/adm/*`)}`, { method: "DELETE" })
    expect(del.status).toBe(200)
    expect(await del.json()).toEqual({ pattern: `${host}/adm/*`, removed: 2 })
    expect((await get("/other")).headers.get("cache-status")).toMatch(/hit/)
    expect((await get("/adm/a")).headers.get("cache-status")).toContain("fwd=uri-miss")
    const byHost = await fetch(`${proxy.url}/admin/cache?pattern=*.0.0.1`, { method: "DELETE" })
    expect(((await byHost.json()) as { removed: number }).removed).toBeGreaterThan(1)
    const stats = (await (await fetch(`${proxy.url}/admin/cache/stats`)).json()) as Record<string, number>
    expect(stats.entries).toBe(0)
    expect(stats.hits).toBeGreaterThan(0)
    expect(stats.misses).toBeGreaterThan(0)
    expect(stats.coalesced_requests).toBeGreaterThanOrEqual(7)
    expect(stats.hit_ratio).toBeGreaterThan(0)
    expect((await fetch(`${proxy.url}/admin/cache`, { method: "DELETE" })).status).toBe(400)
  })

  it("off by default: no Cache-Status and nothing stored", async () => {
    const plain = await startProxy({ routing: { default_backend: origin.url } })
    routes.set("/off", counting({ "cache-control": "max-age=300" }))
    await (await fetch(`${plain.url}/off`)).text()
    const b = await fetch(`${plain.url}/off`)
    expect(await b.text()).toBe("v2")
    expect(b.headers.get("cache-status")).toBeNull()
    await plain.stop()
  })
})
