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
