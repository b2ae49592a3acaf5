/**
 * Prometheus metrics through the real proxy: scraped from the metrics port and from the main
 * port, checked for the families the issue lists, bounded labels, and `promtool check metrics`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { allEvents, eventReader, execute, fixture, NODE } from "../fixtures/cli.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"
import { sample, scrape as scrapeMetrics } from "../fixtures/metrics.ts"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"



describe("metrics (OpenTelemetry → Prometheus)", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({ routing: { default_backend: origin.url }, upstream: { max_connections_per_origin: 4 } })
    for (let i = 0; i < 3; i++) await (await fetch(`${proxy.url}/a/${i}?secret=${i}`)).text()
    await (await fetch(`${proxy.url}/b`, { method: "POST", body: "hello" })).text()
    await (await fetch(`${proxy.url}/x`, { method: "PROPFIND" })).text()
    await (await fetch(`${proxy.url}/health/liveness`)).text()
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  const scrape = async (url: string) => {
    const res = await fetch(url)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/)
    return res.text()
  }

  it("counts requests by method, status class and route, with bounded labels", async () => {
    const text = await scrape(`http://127.0.0.1:${proxy.metricsPort}/metrics`)
    expect(sample(text, "gatehouse_http_requests_total", { method: "GET", status_class: "2xx", route: origin.url })).toBe(3)
    expect(sample(text, "gatehouse_http_requests_total", { method: "POST", status_class: "2xx", route: origin.url })).toBe(1)
    expect(sample(text, "gatehouse_http_requests_total", { method: "OTHER", route: origin.url })).toBe(1)
    expect(sample(text, "gatehouse_http_requests_total", { method: "GET", route: "control" })).toBe(1)
    expect(sample(text, "gatehouse_http_request_body_bytes_total", { method: "POST" })).toBe(5)
    // no raw URLs, query strings or client addresses become label values
    expect(text).not.toContain("secret")
    expect(text).not.toContain("/a/")
    expect(text).not.toContain('"127.0.0.1"')
  })

  it("a control endpoint's answer is counted and logged with the body bytes it sent", async () => {
    const sent = Buffer.byteLength(JSON.stringify({ status: "up" }) + "\n")
    const entry = proxy.entries().find((e) => e["url"] === "/health/liveness")
    expect(entry?.["bytes_out"]).toBe(sent)
    const text = await scrape(`http://127.0.0.1:${proxy.metricsPort}/metrics`)
    expect(sample(text, "gatehouse_http_response_body_bytes_total", { method: "GET", route: "control" })).toBe(sent)
  })

  it("has request and upstream duration histograms, connection and pool gauges", async () => {
    const text = await scrape(`http://127.0.0.1:${proxy.metricsPort}/metrics`)
    expect(text).toContain("# TYPE gatehouse_http_request_duration_seconds histogram")
    expect(sample(text, "gatehouse_http_request_duration_seconds_count", { method: "GET", status_class: "2xx", route: origin.url })).toBe(3)
    expect(sample(text, "gatehouse_http_request_duration_seconds_bucket", { method: "GET", status_class: "2xx", le: "+Inf" })).toBe(3)
    expect(sample(text, "gatehouse_upstream_duration_seconds_count", { route: origin.url })).toBe(5)
    expect(text).toContain("# TYPE gatehouse_active_connections gauge")
    expect(text).toContain("# TYPE gatehouse_active_tunnels gauge")
    expect(sample(text, "gatehouse_upstream_pool_connections", { origin: origin.url })).toBeGreaterThanOrEqual(1)
    expect(sample(text, "gatehouse_upstream_pool_connections", { origin: origin.url })).toBeLessThanOrEqual(4)
    expect(sample(text, "gatehouse_backend_up", { backend: origin.url })).toBe(1)
    for (const family of ["gatehouse_cache_size_bytes", "gatehouse_cli_processes_running", "gatehouse_compression_ratio", "gatehouse_forced_scavenges"]) {
      expect(text).toContain(`# HELP ${family}`)
    }
    // the responses relayed so far were counted (the Reclaimer's bytes)
    expect(sample(text, "gatehouse_relayed_bytes_total", {})).toBeGreaterThan(0)
  })

  it("answers GET /metrics on the main port too (origin-form, control phase)", async () => {
    const text = await scrape(`${proxy.url}/metrics`)
    expect(text).toContain("gatehouse_http_requests_total")
    expect(origin.seen.some((r) => r.url === "/metrics")).toBe(false)
  })

  // promtool is required (.ci/run installs the Debian package prometheus): a missing promtool fails here
  it("passes promtool check metrics (no lint findings at all)", async () => {
    const text = await scrape(`http://127.0.0.1:${proxy.metricsPort}/metrics`)
    expect(text.length).toBeGreaterThan(1000)
    const out = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
    expect(out.error?.message ?? "", "promtool must be installed (apt-get install prometheus)").toBe("")
    expect(out.stdout + out.stderr).toBe("")
    expect(out.status).toBe(0)
  })

  it("promtool rejects a malformed exposition (the check above can fail)", () => {
    const out = spawnSync("promtool", ["check", "metrics"], { input: "# TYPE x counter\nx{a=\"1\" 1\n", encoding: "utf8" })
    expect(out.status).not.toBe(0)
  })

  it("a dead backend shows as down; a dead metrics port is a config error naming metrics.port", async () => {
    const url = "http://127.0.0.1:1" // refused (a privileged port no test binds, unlike a closed origin's, which a parallel test may take)
    const p = await startProxy({ routing: { default_backend: url } })
    try {
      expect((await fetch(`${p.url}/`)).status).toBe(502)
      const text = await scrape(`http://127.0.0.1:${p.metricsPort}/metrics`)
      expect(sample(text, "gatehouse_backend_up", { backend: url })).toBe(0)
      await expect(startProxy({ metrics: { port: p.metricsPort } })).rejects.toMatchObject({ key: "metrics.port" })
    } finally {
      await p.stop()
    }
  })

  it("metrics.enabled: false serves nothing and opens no port", async () => {
    const p = await startProxy({ routing: { default_backend: origin.url }, metrics: { enabled: false } })
    try {
      expect(p.metricsPort).toBe(0)
      const res = await fetch(`${p.url}/metrics`)
      await res.text()
      expect(origin.seen.at(-1)?.url).toBe("/metrics") // routed like any path
    } finally {
      await p.stop()
    }
  })
})

describe("metrics: cache, refusals by rule, CLI processes, CONNECT", () => {
  let origin: Origin
  let proxy: RunningProxy
  let limited: RunningProxy
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gatehouse-metrics-"))
    origin = await startOrigin((_req, res) => {
      res.writeHead(200, { "content-length": 5, "cache-control": "max-age=300" })
      res.end("hello")
    })
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      cache: { enabled: true },
      cli: { enabled: true, allowed_commands: [NODE] },
      security: { filters_file: "", filtering: { mode: "blocklist", domains: { blocked: ["blocked.example"] } } }
    })
    limited = await startProxy({
      routing: { default_backend: origin.url },
      security: { filters_file: "", rate_limiting: { enabled: true, requests_per_second: 0.001, burst: 1, exempt: [] } }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await limited.stop()
    await origin.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("cache hits, misses, stores, stale serves, evictions, size and entries come from the cache's own stats", async () => {
    for (let i = 0; i < 3; i++) await (await fetch(`${proxy.url}/c`)).text()
    const stats = (await (await fetch(`${proxy.url}/admin/cache/stats`)).json()) as Record<string, number>
    const text = await scrapeMetrics(proxy.metricsPort)
    expect(sample(text, "gatehouse_cache_hits_total", {})).toBe(2)
    expect(sample(text, "gatehouse_cache_misses_total", {})).toBe(1)
    expect(sample(text, "gatehouse_cache_stores_total", {})).toBe(1)
    expect(sample(text, "gatehouse_cache_stale_serves_total", {})).toBe(0)
    expect(sample(text, "gatehouse_cache_evictions_total", {})).toBe(0)
    expect(sample(text, "gatehouse_cache_coalesced_requests_total", {})).toBe(0)
    expect(sample(text, "gatehouse_cache_entries", {})).toBe(1)
    expect(sample(text, "gatehouse_cache_size_bytes", {})).toBe(stats.bytes)
  })

  it("blocked requests are counted by rule (filter and CONNECT port policy); CONNECT is counted like any request", async () => {
    const blocked = await new Promise<number>((resolve, reject) => {
      request({ host: "127.0.0.1", port: proxy.port, path: "http://blocked.example/", agent: false }, (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode ?? 0))
      }).on("error", reject).end()
    })
    expect(blocked).toBe(403)
    const connect = await rawRequest(proxy.port, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
    expect(statusOf(connect.text)).toBe(403)
    const text = await scrapeMetrics(proxy.metricsPort)
    expect(sample(text, "gatehouse_blocked_requests_total", { rule: "security.filtering.domains.blocked: blocked.example" })).toBe(1)
    expect(sample(text, "gatehouse_blocked_requests_total", { rule: "server.connect.allowed_ports" })).toBe(1)
    expect(sample(text, "gatehouse_http_requests_total", { method: "CONNECT", status_class: "4xx", route: "connect" })).toBe(1)
    expect(text).not.toContain("blocked.example/")
  })

  it("rate-limited requests are counted by rule", async () => {
    const statuses: Array<number> = []
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${limited.url}/r`)
      await r.text()
      statuses.push(r.status)
    }
    expect(statuses).toEqual([200, 429, 429])
    const text = await scrapeMetrics(limited.metricsPort)
    expect(sample(text, "gatehouse_rate_limited_requests_total", { rule: "security.rate_limiting" })).toBe(2)
    expect(sample(text, "gatehouse_http_requests_total", { method: "GET", status_class: "4xx" })).toBe(2)
  })

  it("CLI processes: running while one runs, then finished by outcome", async () => {
    const gate = join(dir, "open")
    const res = await execute(proxy.url, { command: "node", args: [fixture("gate.mjs"), gate] })
    expect(res.status).toBe(200)
    const events = eventReader(res)
    expect((await events.next())?.type).toBe("start")
    expect((await events.next())?.data).toBe("first\n")
    expect(sample(await scrapeMetrics(proxy.metricsPort), "gatehouse_cli_processes_running", {})).toBe(1)
    writeFileSync(gate, "")
    await events.rest()
    expect(existsSync(gate)).toBe(true)
    await allEvents(await execute(proxy.url, { command: "node", args: [fixture("exit.mjs"), "code", "3"] }))
    await expect.poll(async () => sample(await scrapeMetrics(proxy.metricsPort), "gatehouse_cli_processes_finished_total", { outcome: "exit_nonzero" })).toBe(1)
    const text = await scrapeMetrics(proxy.metricsPort)
    expect(sample(text, "gatehouse_cli_processes_running", {})).toBe(0)
    expect(sample(text, "gatehouse_cli_processes_finished_total", { outcome: "exit_zero" })).toBe(1)
  })
})

describe("metrics with the cache on", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin((_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=60", "content-length": 2 })
      res.end("ok")
    })
    proxy = await startProxy({ routing: { default_backend: origin.url }, cache: { enabled: true } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("a cache hit counts under the route of the backend it stands for, not the unconfigured \"reverse\"", async () => {
    for (let i = 0; i < 2; i++) await (await fetch(`${proxy.url}/cached`)).text()
    expect(origin.seen).toHaveLength(1)
    const text = await scrapeMetrics(proxy.metricsPort)
    expect(sample(text, "gatehouse_http_requests_total", { method: "GET", status_class: "2xx", route: origin.url })).toBe(2)
    expect(sample(text, "gatehouse_http_requests_total", { route: "reverse" })).toBeUndefined()
    // the access log names no upstream for the hit: none was contacted
    expect(proxy.entries().map((e) => e["upstream"])).toEqual([origin.url, ""])
  })
})

describe("metrics: requests answered outside the routed path are counted where they are logged", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin((_req, res) => {
      const body = "x".repeat(2000)
      res.writeHead(200, { "content-type": "text/plain", "content-length": body.length })
      res.end(body)
    })
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      server: { limits: { max_header_bytes: 1024 }, timeouts: { read: "300ms", write: "300ms" } },
      compression: { enabled: true },
      security: { filters_file: "", admin_token: "s3cret-admin" }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("RFC 9112 §11.2 / slowloris: heads the parser refuses (400, 431) or that time out (408) are counted with route=\"invalid\"", async () => {
    const before = proxy.lines.length
    expect(statusOf((await rawRequest(proxy.port, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")).text)).toBe(400)
    expect(statusOf((await rawRequest(proxy.port, `GET /h HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(1500)}\r\n\r\n`)).text)).toBe(431)
    expect(statusOf((await rawRequest(proxy.port, "GET /x HTTP/1.1\r\nHost: a\r\n", 10_000)).text)).toBe(408)
    await expect.poll(() => proxy.entries().slice(before).filter((e) => e["kind"] === "invalid").length).toBe(3)
    const text = await scrapeMetrics(proxy.metricsPort)
    expect(sample(text, "gatehouse_http_requests_total", { method: "GET", status_class: "4xx", route: "invalid" })).toBe(3)
    const sent = proxy.entries().slice(before).reduce((n, e) => n + Number(e["bytes_out"]), 0)
    expect(sample(text, "gatehouse_http_response_body_bytes_total", { method: "GET", status_class: "4xx", route: "invalid" })).toBe(sent)
  })

  it("GET /metrics on the main port is logged and counted after it is answered, with the body bytes it sent", async () => {
    const res = await fetch(`${proxy.url}/metrics`)
    const body = Buffer.from(await res.arrayBuffer())
    expect(res.status).toBe(200)
    await expect.poll(() => proxy.entries().find((e) => e["url"] === "/metrics")).toBeDefined()
    const entry = proxy.entries().find((e) => e["url"] === "/metrics")!
    expect(entry).toMatchObject({ status: 200, kind: "control", bytes_out: body.length })
    const text = await scrapeMetrics(proxy.metricsPort)
    expect(sample(text, "gatehouse_http_response_body_bytes_total", { method: "GET", status_class: "2xx", route: "control" })).toBe(body.length)
  })

  it("admin answers refused for want of the token (401) are counted and logged as control, not as reverse-proxied", async () => {
    const res = await fetch(`${proxy.url}/admin/status`)
    await res.text()
    expect(res.status).toBe(401)
    await expect.poll(() => proxy.entries().find((e) => e["url"] === "/admin/status")).toBeDefined()
    expect(proxy.entries().find((e) => e["url"] === "/admin/status")).toMatchObject({ status: 401, kind: "control" })
    const text = await scrapeMetrics(proxy.metricsPort)
    expect(sample(text, "gatehouse_http_requests_total", { method: "GET", status_class: "4xx", route: "control" })).toBe(1)
    expect(sample(text, "gatehouse_http_requests_total", { status_class: "4xx", route: origin.url })).toBeUndefined()
  })

  it("response body bytes are counted as sent (after compression), as its HELP says", async () => {
    const res = await fetch(`${proxy.url}/compressible`, { headers: { "accept-encoding": "gzip" } })
    expect(res.headers.get("content-encoding")).toBe("gzip")
    await res.arrayBuffer()
    await expect.poll(() => proxy.entries().find((e) => e["url"] === "/compressible")).toBeDefined()
    const sent = Number(proxy.entries().find((e) => e["url"] === "/compressible")!["bytes_out"])
    expect(sent).toBeLessThan(2000)
    const text = await scrapeMetrics(proxy.metricsPort)
    expect(sample(text, "gatehouse_http_response_body_bytes_total", { method: "GET", status_class: "2xx", route: origin.url })).toBe(sent)
    const help = text.split("\n").find((l) => l.startsWith("# HELP gatehouse_http_response_body_bytes_total "))
    expect(help).toContain("after compression")
    expect(help).not.toContain("before compression")
  })
})
