/**
 * Upstream connection pooling (`upstream:`): keep-alive reuse, the per-origin connection cap with
 * queueing, no pipelining by default, and the pool gauges on /metrics while requests wait.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { ServerResponse } from "node:http"
import { connect, type Socket } from "node:net"
import { sample, scrape } from "../fixtures/metrics.ts"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { makeCa, startHttpsOrigin } from "../fixtures/tls.ts"


describe("upstream connection pool", () => {
  let origin: Origin
  let capped: RunningProxy
  let single: RunningProxy
  const sockets = new Set<Socket>()
  let held: Array<ServerResponse> = []
  let inFlight = 0
  let maxInFlight = 0
  let endlessBlocked = 0
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      sockets.add(req.socket)
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      const finish = () => {
        inFlight--
        res.writeHead(200, { "content-length": 2 })
        res.end("ok")
      }
      if (req.url?.startsWith("/hold")) held.push(Object.assign(res, { finish }) as ServerResponse)
      else if (req.url?.startsWith("/endless")) {
        // a body without end, written as fast as the proxy takes it: stops when the proxy stops reading
        res.writeHead(200, { "content-type": "application/octet-stream" })
        const chunk = Buffer.alloc(64 * 1024, 120)
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) endlessBlocked++
        }
        res.on("drain", pump)
        res.on("close", () => inFlight--)
        pump()
      } else finish()
    })
    capped = await startProxy({ routing: { default_backend: origin.url }, upstream: { max_connections_per_origin: 2 } })
    single = await startProxy({ routing: { default_backend: origin.url }, upstream: { max_connections_per_origin: 1 } })
  })
  afterAll(async () => {
    await capped.stop()
    await single.stop()
    await origin.close()
  })
  const release = () => {
    const now = held
    held = []
    for (const r of now) (r as unknown as { finish: () => void }).finish()
  }

  it("keep-alive: sequential requests reuse one upstream connection", async () => {
    sockets.clear()
    for (let i = 0; i < 5; i++) await (await fetch(`${single.url}/seq/${i}`)).text()
    expect(sockets.size).toBe(1)
  })

  it("max_connections_per_origin caps concurrent upstream connections; the rest queue (pool gauges show it)", async () => {
    sockets.clear()
    maxInFlight = 0
    const pending = Array.from({ length: 6 }, (_, i) => fetch(`${capped.url}/hold/${i}`).then((r) => r.text()))
    await expect.poll(() => held.length).toBe(2)
    const metrics = await scrape(capped.metricsPort)
    expect(sample(metrics, "gatehouse_upstream_pool_connections", { origin: origin.url })).toBe(2)
    expect(sample(metrics, "gatehouse_upstream_pool_running_requests", { origin: origin.url })).toBe(2)
    expect(sample(metrics, "gatehouse_upstream_pool_queued_requests", { origin: origin.url })).toBe(4)
    // answer whatever reaches the origin until all six went through the two connections
    while (held.length > 0 || origin.seen.filter((s) => s.url.startsWith("/hold/")).length < 6) {
      release()
      await new Promise((r) => setTimeout(r, 5))
    }
    expect(await Promise.all(pending)).toEqual(Array(6).fill("ok"))
    expect(maxInFlight).toBe(2)
    expect(sockets.size).toBe(2)
  })

  it("pipelining is off by default: a second request waits for the first response on the one connection", async () => {
    maxInFlight = 0
    const a = fetch(`${single.url}/hold/a`).then((r) => r.text())
    const b = fetch(`${single.url}/hold/b`).then((r) => r.text())
    await expect.poll(() => held.length).toBe(1)
    // the origin has not been sent /hold/b while /hold/a is unanswered (it would be, pipelined)
    expect(origin.seen.some((s) => s.url === "/hold/b")).toBe(false)
    release()
    await expect.poll(() => held.length).toBe(1)
    release()
    expect([await a, await b]).toEqual(["ok", "ok"])
    expect(maxInFlight).toBe(1)
  })

  it("a request whose client leaves while it waits in the pool's queue is dropped there: it never takes the connection, which serves the next request", async () => {
    const a = fetch(`${single.url}/hold/a`).then((r) => r.text())
    await expect.poll(() => held.length).toBe(1)
    const queued = async () => sample(await scrape(single.metricsPort), "gatehouse_upstream_pool_queued_requests", { origin: origin.url })
    // the client of /left sends its request, which queues behind /hold/a, then goes away
    const left = connect(single.port, "127.0.0.1")
    left.write(`GET /left HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`)
    await expect.poll(queued).toBe(1)
    left.destroy()
    await expect.poll(queued).toBe(0)
    release()
    expect(await a).toBe("ok")
    // the connection is free again: the next request is answered, and /left never reached the origin
    expect(await (await fetch(`${single.url}/after`, { signal: AbortSignal.timeout(3000) })).text()).toBe("ok")
    expect(origin.seen.some((s) => s.url === "/left")).toBe(false)
    const after = await scrape(single.metricsPort)
    expect(sample(after, "gatehouse_upstream_pool_running_requests", { origin: origin.url })).toBe(0)
    expect(sample(after, "gatehouse_upstream_pool_queued_requests", { origin: origin.url })).toBe(0)
  })

  it("a client that stops reading a response and leaves: the paused upstream exchange is aborted and its connection freed for the next request", async () => {
    endlessBlocked = 0
    const left = connect(single.port, "127.0.0.1")
    left.pause() // reads nothing: the proxy's writes back up, and it stops reading from the origin
    left.write(`GET /endless HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`)
    await expect.poll(() => endlessBlocked, { timeout: 5000 }).toBeGreaterThan(0)
    left.destroy()
    await expect.poll(async () => sample(await scrape(single.metricsPort), "gatehouse_upstream_pool_running_requests", { origin: origin.url })).toBe(0)
    expect(await (await fetch(`${single.url}/after-endless`, { signal: AbortSignal.timeout(3000) })).text()).toBe("ok")
  })

  it("configured backends (the default and each rule's target) have their pools from start-up: gauges at 0 before any request", async () => {
    const other = await startOrigin((_req, res) => res.end("other"))
    const proxy = await startProxy({
      routing: { default_backend: origin.url, rules: [{ match: { path_prefix: "/other" }, forward: { target: `${other.url}/base` } }] },
      security: { allow_private_destinations: ["127.0.0.1/32"] }
    })
    try {
      const before = await scrape(proxy.metricsPort)
      expect(sample(before, "gatehouse_upstream_pool_connections", { origin: origin.url })).toBe(0)
      expect(sample(before, "gatehouse_upstream_pool_connections", { origin: other.url })).toBe(0)
      expect(await (await fetch(`${proxy.url}/other/x`)).text()).toBe("other")
      expect(other.seen.at(-1)?.url).toBe("/base/other/x")
      expect(sample(await scrape(proxy.metricsPort), "gatehouse_upstream_pool_connections", { origin: other.url })).toBe(1)
    } finally {
      await proxy.stop()
      await other.close()
    }
  })

  it("the pool of routes with tls_insecure_skip_verify is exported too, summed with a verified pool to the same origin", async () => {
    const ca = makeCa()
    const secure = await startHttpsOrigin(ca.issue("localhost"))
    const proxy = await startProxy({
      routing: {
        default_backend: "",
        rules: [
          { match: { path_prefix: "/skip" }, forward: { target: secure.url }, tls_insecure_skip_verify: true },
          { match: { path_prefix: "/verified" }, forward: { target: secure.url } }
        ]
      },
      security: { upstream_tls: { ca: ca.caFile } }
    })
    try {
      // one kept-alive connection in each pool: the insecure route's own and the verified one
      expect(await (await fetch(`${proxy.url}/skip/a`)).text()).toBe("secure hello")
      expect(await (await fetch(`${proxy.url}/verified/a`)).text()).toBe("secure hello")
      expect(sample(await scrape(proxy.metricsPort), "gatehouse_upstream_pool_connections", { origin: secure.url })).toBe(2)
      await expect.poll(async () => sample(await scrape(proxy.metricsPort), "gatehouse_upstream_pool_free_connections", { origin: secure.url })).toBe(2)
    } finally {
      await proxy.stop()
      await secure.close()
    }
  })
})
