/**
 * Prometheus metrics through the real proxy: scraped from the metrics port and from the main
 * port, checked for the families the issue lists, bounded labels, and `promtool check metrics`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

const promtool = (() => {
  const probe = spawnSync("promtool", ["--version"], { encoding: "utf8" })
  return probe.error === undefined && probe.status === 0
})()

const sample = (text: string, name: string, labels: Record<string, string>): number | undefined => {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))
    if (ok) return Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return undefined
}

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
    for (const family of ["gatehouse_cache_size_bytes", "gatehouse_cli_processes_running", "gatehouse_compression_ratio"]) {
      expect(text).toContain(`# HELP ${family}`)
    }
  })

  it("answers GET /metrics on the main port too (origin-form, control phase)", async () => {
    const text = await scrape(`${proxy.url}/metrics`)
    expect(text).toContain("gatehouse_http_requests_total")
    expect(origin.seen.some((r) => r.url === "/metrics")).toBe(false)
  })

  it.skipIf(!promtool)("passes promtool check metrics", async () => {
    const text = await scrape(`http://127.0.0.1:${proxy.metricsPort}/metrics`)
    const out = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
    expect(out.stdout + out.stderr).toBe("")
    expect(out.status).toBe(0)
  })
  if (!promtool) it("promtool check metrics (skipped: promtool not installed; .ci/run installs the Debian package prometheus)", () => {})

  it("a dead backend shows as down; a dead metrics port is a config error naming metrics.port", async () => {
    const dead = await startOrigin()
    const url = dead.url
    await dead.close()
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
