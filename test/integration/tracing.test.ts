/**
 * Traces through the real proxy to a real OTLP/HTTP receiver (test/fixtures/otlpReceiver.ts: node:http on port 0,
 * decoding the JSON the OTLP exporter posts to /v1/traces): W3C traceparent continued from the
 * client, propagated to the upstream, per-phase child spans, semantic-convention attributes,
 * trace_id in the access log.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createServer, request } from "node:http"
import net, { type AddressInfo } from "node:net"
import { startProgram, writeTempConfig } from "../fixtures/program.ts"
import { type OtlpReceiver, type OtlpSpan, startOtlpReceiver } from "../fixtures/otlpReceiver.ts"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

const SERVER = 2
const CLIENT = 3
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
const PARENT = "00f067aa0ba902b7"

const attr = (s: OtlpSpan, key: string): unknown => {
  const v = s.attributes.find((a) => a.key === key)?.value
  return v === undefined ? undefined : v.stringValue ?? (v.intValue === undefined ? v.boolValue ?? v.doubleValue : Number(v.intValue))
}

const get = (port: number, path: string, headers: Record<string, string>) =>
  new Promise<number>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", reject)
    req.end()
  })

describe("tracing (OpenTelemetry → OTLP/HTTP)", () => {
  let receiver: OtlpReceiver
  let origin: Origin
  let proxy: RunningProxy
  let dead: net.Server
  beforeAll(async () => {
    receiver = await startOtlpReceiver()
    origin = await startOrigin((_req, res) => {
      const body = "x".repeat(4096)
      res.writeHead(200, { "content-type": "text/plain", "content-length": String(body.length) }).end(body)
    })
    // an upstream that resets every connection (a closed origin's port could be taken by another
    // test's server before the request is sent, when the suite runs in parallel)
    dead = net.createServer((sock) => sock.resetAndDestroy())
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve))
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`
    proxy = await startProxy({
      routing: { default_backend: origin.url, rules: [{ match: { path_prefix: "/dead" }, forward: { target: deadUrl } }] },
      compression: { enabled: true },
      tracing: { enabled: true, otlp_endpoint: receiver.url, sample_ratio: 1, service_name: "gatehouse-test" }
    })
    await get(proxy.port, "/continued?token=secret", { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: "vendor=1", "accept-encoding": "gzip" })
    await get(proxy.port, "/fresh", {})
    await get(proxy.port, "/dead/x", {})
    await get(proxy.port, "/state-alone", { tracestate: "vendor=abc" })
    await get(proxy.port, "/state-garbage-parent", { traceparent: "garbage", tracestate: "vendor=abc" })
    await get(proxy.port, `http://alice:s3cret@127.0.0.1:${origin.port}/cred`, {})
    await proxy.stop() // the tracer provider flushes its batch on shutdown
  })
  afterAll(async () => {
    await origin.close()
    await receiver.close()
    await new Promise((resolve) => dead.close(resolve))
  })

  const spansOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId)

  it("exports OTLP/HTTP JSON with the configured service name", () => {
    expect([...receiver.contentTypes()]).toEqual(["application/json"])
    expect(JSON.stringify(receiver.resources)).toContain("gatehouse-test")
  })

  it("continues the client's traceparent: the SERVER span's parent is the client's span", () => {
    const server = spansOf(TRACE).find((s) => s.kind === SERVER)
    expect(server).toBeDefined()
    expect(server!.parentSpanId).toBe(PARENT)
    expect(server!.name).toBe("GET")
    expect(attr(server!, "http.request.method")).toBe("GET")
    expect(attr(server!, "http.response.status_code")).toBe(200)
    expect(attr(server!, "url.path")).toBe("/continued") // no query string in spans
    expect(attr(server!, "url.scheme")).toBe("http")
    expect(attr(server!, "client.address")).toBe("127.0.0.1")
    expect(attr(server!, "server.port")).toBe(proxy.port)
  })

  it("propagates the CLIENT span's context upstream as traceparent (tracestate kept)", () => {
    const server = spansOf(TRACE).find((s) => s.kind === SERVER)!
    const client = spansOf(TRACE).find((s) => s.kind === CLIENT)!
    expect(client.parentSpanId).toBe(server.spanId)
    expect(attr(client, "server.address")).toBe("127.0.0.1")
    expect(attr(client, "http.response.status_code")).toBe(200)
    const seen = origin.seen.find((r) => r.url.startsWith("/continued"))!
    expect(seen.headers.traceparent).toBe(`00-${TRACE}-${client.spanId}-01`)
    expect(seen.headers.tracestate).toBe("vendor=1")
  })

  it("has child spans per phase (filter, compress)", () => {
    const server = spansOf(TRACE).find((s) => s.kind === SERVER)!
    const client = spansOf(TRACE).find((s) => s.kind === CLIENT)!
    const compress = spansOf(TRACE).find((s) => s.name === "compress")
    expect(compress?.parentSpanId).toBe(client.spanId)
    expect(attr(compress!, "gatehouse.compression.algorithm")).toBe("gzip")
    const filter = spansOf(TRACE).find((s) => s.name === "filter")
    expect(filter?.parentSpanId).toBe(server.spanId)
  })

  it("starts a new trace without a traceparent, and writes trace_id in the access log", () => {
    const entries = proxy.entries()
    expect(entries.find((e) => e.url === "/continued?token=secret")?.trace_id).toBe(TRACE)
    const fresh = entries.find((e) => e.url === "/fresh")!
    expect(fresh.trace_id).toMatch(/^[0-9a-f]{32}$/)
    expect(fresh.trace_id).not.toBe(TRACE)
    const server = spansOf(String(fresh.trace_id)).find((s) => s.kind === SERVER)!
    expect(server.parentSpanId ?? "").toBe("")
    expect(String(origin.seen.find((r) => r.url === "/fresh")?.headers.traceparent)).toMatch(new RegExp(`^00-${fresh.trace_id}-[0-9a-f]{16}-01$`))
  })

  it("W3C Trace Context §3.3: a trace the proxy starts does not carry the client's tracestate upstream (it belonged to no valid traceparent)", () => {
    for (const url of ["/state-alone", "/state-garbage-parent"]) {
      const entry = proxy.entries().find((e) => e.url === url)!
      const seen = origin.seen.find((r) => r.url === url)!
      expect(String(seen.headers.traceparent)).toMatch(new RegExp(`^00-${entry.trace_id}-[0-9a-f]{16}-01$`))
      expect(seen.headers.tracestate).toBeUndefined()
    }
  })

  it("credential leak: url.full of an absolute-form target with userinfo is exported as REDACTED:REDACTED (OTel semconv)", () => {
    const entry = proxy.entries().find((e) => String(e.url).endsWith("/cred"))!
    const server = spansOf(String(entry.trace_id)).find((s) => s.kind === SERVER)!
    expect(attr(server, "url.full")).toBe(`http://REDACTED:REDACTED@127.0.0.1:${origin.port}/cred`)
    expect(JSON.stringify(receiver.spans)).not.toContain("s3cret")
  })

  it("marks a 5xx answer as an error on the SERVER span", () => {
    const dead = proxy.entries().find((e) => e.url === "/dead/x")!
    expect(dead.status).toBe(502)
    const server = spansOf(String(dead.trace_id)).find((s) => s.kind === SERVER)!
    expect(attr(server, "http.response.status_code")).toBe(502)
    expect(attr(server, "error.type")).toBe("502")
    expect(server.status?.code).toBe(2)
  })

  it("tracing off (the default): no spans, the client's traceparent passes through untouched", async () => {
    const p = await startProxy({ routing: { default_backend: origin.url } })
    const before = receiver.spans.length
    try {
      await get(p.port, "/off", { traceparent: `00-${TRACE}-${PARENT}-01` })
      expect(origin.seen.find((r) => r.url === "/off")?.headers.traceparent).toBe(`00-${TRACE}-${PARENT}-01`)
      expect(p.entries().at(-1)?.trace_id).toBeUndefined()
    } finally {
      await p.stop()
    }
    expect(receiver.spans.length).toBe(before)
  })

  it("head sampling: a client's unsampled traceparent (flags 00) and sample_ratio 0 make no spans; the traceparent is relayed unchanged", async () => {
    const unsampledTrace = "0af7651916cd43dd8448eb211c80319c"
    const p = await startProxy({
      routing: { default_backend: origin.url },
      tracing: { enabled: true, otlp_endpoint: receiver.url, sample_ratio: 0 }
    })
    try {
      await get(p.port, "/unsampled", { traceparent: `00-${unsampledTrace}-${PARENT}-00` })
      await get(p.port, "/ratio0", {})
      await get(p.port, "/client-sampled", { traceparent: `00-${unsampledTrace.replace("0af", "1af")}-${PARENT}-01` })
      expect(origin.seen.find((r) => r.url === "/unsampled")?.headers.traceparent).toBe(`00-${unsampledTrace}-${PARENT}-00`)
      expect(origin.seen.find((r) => r.url === "/ratio0")?.headers.traceparent).toBeUndefined()
      const entries = p.entries()
      expect(entries.find((e) => e.url === "/unsampled")?.trace_id).toBe(unsampledTrace) // still correlatable in the log
      expect(entries.find((e) => e.url === "/ratio0")?.trace_id).toBeUndefined()
    } finally {
      await p.stop() // flushes the batch
    }
    expect(spansOf(unsampledTrace)).toEqual([])
    // a sampled parent is followed even at sample_ratio 0 (parent-based)
    expect(spansOf(unsampledTrace.replace("0af", "1af")).some((sp) => sp.kind === SERVER)).toBe(true)
  })

  it("a client that leaves mid-response is logged with the bytes relayed so far, traced or not", async () => {
    const part = Buffer.alloc(64 * 1024, 120)
    const stalling = await startOrigin((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(1024 * 1024) })
      res.write(part) // then nothing: the client gives up
    })
    for (const tracing of [{ enabled: true, otlp_endpoint: receiver.url, sample_ratio: 1 }, { enabled: false }]) {
      const p = await startProxy({ routing: { default_backend: stalling.url }, tracing })
      try {
        await new Promise<void>((resolve, reject) => {
          let got = 0
          const req = request({ host: "127.0.0.1", port: p.port, path: "/stalls", agent: false }, (res) => {
            res.on("data", (c: Buffer) => {
              got += c.length
              if (got >= part.length) req.destroy()
            })
          })
          req.on("error", () => undefined)
          req.on("close", () => resolve())
          req.on("timeout", () => reject(new Error("no bytes")))
          req.end()
        })
        await expect.poll(() => p.entries().find((e) => e.url === "/stalls"), { timeout: 5000 }).toBeDefined()
        const entry = p.entries().find((e) => e.url === "/stalls")!
        expect({ tracing: tracing.enabled, outcome: entry.outcome }).toEqual({ tracing: tracing.enabled, outcome: "client_abort" })
        expect(entry.bytes_out).toBeGreaterThanOrEqual(part.length)
      } finally {
        await p.stop()
      }
    }
    await stalling.close()
  })
})

describe("tracing: a collector that fails", () => {
  it("silent telemetry loss: failed exports are logged, one warning per streak of failures, and their end at info", async () => {
    // a real OTLP/HTTP endpoint that refuses every export (400: not retried) until told otherwise
    let accept = false
    const exports = { failed: 0, accepted: 0 }
    const collector = createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        if (accept) exports.accepted++
        else exports.failed++
        res.writeHead(accept ? 200 : 400, { "content-type": "application/json" }).end("{}")
      })
    })
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve))
    const origin = await startOrigin()
    const config = writeTempConfig([
      "server: {port: 0}",
      `routing: {default_backend: "${origin.url}"}`,
      `security: {filters_file: "", allow_private_destinations: ["127.0.0.0/8"]}`,
      "metrics: {enabled: false}",
      "logging: {access_log: false}",
      `tracing: {enabled: true, sample_ratio: 1, otlp_endpoint: "http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces"}`,
      ""
    ].join("\n"))
    const program = await startProgram(["--config", config])
    // each request makes a few spans; a full batch (512 spans) is exported at once
    const traffic = async (until: () => boolean) => {
      for (let round = 0; round < 100 && !until(); round++) {
        for (let i = 0; i < 50; i++) await (await fetch(`http://127.0.0.1:${program.port}/t`)).text()
      }
      expect(until()).toBe(true)
    }
    const lines = (text: string) => program.output().split("\n").filter((l) => l.includes(text))
    try {
      await traffic(() => exports.failed >= 2)
      accept = true
      await traffic(() => exports.accepted >= 1)
      // exports run one at a time: once the recovery is logged, every failure before it was handled
      await expect.poll(() => lines("trace export working again").length, { timeout: 5000 }).toBe(1)
      const failing = lines("trace export failing")
      expect(failing).toHaveLength(1)
      expect(failing[0]).toMatch(/WARN/i)
      expect(failing[0]).toContain("/v1/traces")
    } finally {
      program.child.kill("SIGTERM")
      await program.exited
      await origin.close()
      await new Promise((resolve) => collector.close(resolve))
    }
  }, 60_000)
})
