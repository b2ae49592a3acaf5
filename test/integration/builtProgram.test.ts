/**
 * `npm start` runs the built program (`npm run build`: tsc -p tsconfig.build.json → dist/, then
 * scripts/bundle.ts → dist/gatehouse/), not the TypeScript sources through Node's type stripping. The
 * other program tests run the sources; these build the way `npm start` does and drive the bundle, so a
 * broken build config or a module the bundle mishandles fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { request } from "node:http"
import { createSecureServer } from "node:http2"
import { request as httpsRequest } from "node:https"
import { type OtlpReceiver, startOtlpReceiver } from "../fixtures/otlpReceiver.ts"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { BUILT_ENTRY, ROOT, runProgram, startProgram, writeTempConfig } from "../fixtures/program.ts"
import { type RunningRedis, startRedis } from "../fixtures/redis.ts"
import { makeCa } from "../fixtures/tls.ts"

const build = (): Promise<{ code: number; output: string }> =>
  new Promise((resolve) => {
    execFile("npm", ["run", "--silent", "build"], { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), output: stdout + stderr }))
  })

const get = (port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> =>
  new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => { body += c })
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    }).on("error", reject).end()
  })

/** A config file: any free port, the origin as default backend (loopback allowed), plus `extra` lines. */
const configFor = (origin: Origin, extra: ReadonlyArray<string> = []): string =>
  writeTempConfig([
    "server: {host: 127.0.0.1, port: 0}",
    `routing: {default_backend: "${origin.url}", rules: []}`,
    "logging: {level: info, format: json}",
    `security: {allow_private_destinations: ["127.0.0.1/32"]}`,
    ...extra,
    ""
  ].join("\n"))

describe("npm start's built program (dist/gatehouse/main.js)", () => {
  let origin: Origin
  beforeAll(async () => {
    const built = await build()
    expect(built.output).toBe("")
    expect(built.code).toBe(0)
    origin = await startOrigin((req, res) => {
      if (req.url?.startsWith("/cacheable") === true) res.setHeader("cache-control", "max-age=60")
      res.end("from-origin")
    })
  }, 130_000)
  afterAll(() => origin.close())

  it("--check-config validates and exits 0; a bad key exits 1 naming it", async () => {
    const ok = await runProgram(["--config", writeTempConfig("server: {port: 9999}\n"), "--check-config"], {}, BUILT_ENTRY)
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain("configuration OK")
    const bad = await runProgram(["--config", writeTempConfig("server: {port: 70000}\n"), "--check-config"], {}, BUILT_ENTRY)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain("server.port")
  })

  it("proxies to a real origin, logs the request, and exits 0 on SIGTERM", async () => {
    const program = await startProgram(["--config", configFor(origin)], {}, BUILT_ENTRY)
    const res = await get(program.port, "/built")
    expect(res.status).toBe(200)
    expect(res.body).toBe("from-origin")
    expect(res.headers["via"]).toBe("1.1 gatehouse")
    expect(origin.seen.at(-1)?.url).toBe("/built")
    program.child.kill("SIGTERM")
    expect(await program.exited).toBe(0)
    expect(program.output()).toMatch(/"type":"access".*"url":"\/built","status":200/)
  })

  // The Redis client and the OTLP exporter are imported only when configured: separate chunks of the
  // bundle, loaded at start-up of a process that enables them.
  describe("with the lazily loaded parts on (Redis cache, OTLP traces)", () => {
    let redis: RunningRedis
    let receiver: OtlpReceiver
    beforeAll(async () => {
      redis = await startRedis()
      receiver = await startOtlpReceiver()
    })
    afterAll(async () => {
      await redis.stop()
      await receiver.close()
    })

    it("serves the second request from the Redis cache and exports its spans on shutdown", async () => {
      const config = configFor(origin, [
        `cache: {enabled: true, backend: redis, redis_url: "${redis.url}"}`,
        `tracing: {enabled: true, otlp_endpoint: "${receiver.url}", service_name: "gatehouse-built"}`
      ])
      const program = await startProgram(["--config", config], {}, BUILT_ENTRY)
      const first = await get(program.port, "/cacheable-built")
      expect(first.status).toBe(200)
      expect(first.headers["cache-status"]).toContain("stored")
      const second = await get(program.port, "/cacheable-built")
      expect(second.headers["cache-status"]).toMatch(/^gatehouse; hit/)
      expect(second.body).toBe("from-origin")
      program.child.kill("SIGTERM")
      expect(await program.exited).toBe(0)
      expect(receiver.spans.some((s) => s.name === "GET" && s.kind === 2)).toBe(true)
      expect(JSON.stringify(receiver.resources)).toContain("gatehouse-built")
    })
  })

  // node:tls and node:https load only when TLS files are configured, and the bundle leaves node:http2
  // out of undici (its Agents are HTTP/1.1 only): an HTTPS listener in front of an HTTPS origin that
  // offers h2 exercises all three in the bundle.
  it("TLS on both sides: an HTTPS listener, and an HTTPS origin offering h2 spoken to over HTTP/1.1", async () => {
    const ca = makeCa()
    const cert = ca.issue("localhost")
    const h2 = createSecureServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key), allowHTTP1: true }, (req, res) => {
      res.end(`tls origin over ${req.httpVersion}`)
    })
    const h2Port = await new Promise<number>((resolve) => h2.listen(0, "127.0.0.1", () => resolve((h2.address() as { port: number }).port)))
    const config = writeTempConfig([
      `server: {host: 127.0.0.1, port: 0, tls: {enabled: true, cert: "${cert.cert}", key: "${cert.key}"}}`,
      `routing: {default_backend: "https://localhost:${h2Port}", rules: []}`,
      `security: {allow_private_destinations: ["127.0.0.1/32", "::1/128"], upstream_tls: {ca: "${ca.caFile}"}}`,
      ""
    ].join("\n"))
    const program = await startProgram(["--config", config], {}, BUILT_ENTRY)
    try {
      const res = await new Promise<{ status: number; body: string; protocol: string }>((resolve, reject) => {
        const r = httpsRequest({ host: "127.0.0.1", port: program.port, path: "/tls", servername: "localhost", ca: ca.caPem, agent: false }, (res) => {
          let body = ""
          res.setEncoding("utf8")
          res.on("data", (c: string) => { body += c })
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body, protocol: (res.socket as { getProtocol?: () => string | null }).getProtocol?.() ?? "" }))
        })
        r.on("error", reject).end()
      })
      expect(res.status).toBe(200)
      expect(res.body).toBe("tls origin over 1.1")
      expect(res.protocol).toMatch(/^TLSv1\.[23]$/)
    } finally {
      program.child.kill("SIGTERM")
      await program.exited
      h2.close()
    }
  })
})
