/**
 * config/filters.yaml reload on SIGHUP, against the program as a user runs it (node src/main.ts as a
 * child process, a real signal): new rules apply without a restart and on a kept-alive connection;
 * an invalid or vanished file is rejected and the rules in force stay; new response rules apply to
 * what the cache stored before them.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { rmSync, writeFileSync } from "node:fs"
import { Agent, request } from "node:http"
import { dirname, join } from "node:path"
import { EICAR } from "../../src/domain/signatureScanner.ts"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type StartedProgram, startProgram, writeTempConfig } from "../fixtures/program.ts"

const agent = new Agent({ keepAlive: true, maxSockets: 1 })

const get = (port: number, host: string) =>
  new Promise<{ status: number; reused: boolean; body: string }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host }, agent }, (res) => {
      let body = ""
      res.on("data", (c) => (body += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, body }))
    })
    req.on("error", reject)
    req.end()
  })

/** Resolves once the program's output matches `pattern` after `from` characters. */
const outputMatches = (program: StartedProgram, pattern: RegExp, from: number) =>
  new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(program.output().slice(from))
      if (m === null) return false
      program.child.stdout!.off("data", check)
      program.child.stderr!.off("data", check)
      resolve(m[0])
      return true
    }
    if (check()) return
    program.child.stdout!.on("data", check)
    program.child.stderr!.on("data", check)
    program.exited.then((code) => reject(new Error(`exited ${code}`)))
  })

describe("filters.yaml reload on SIGHUP", () => {
  let origin: Origin
  let program: StartedProgram
  let filters: string
  beforeAll(async () => {
    origin = await startOrigin()
    const config = writeTempConfig("")
    filters = join(dirname(config), "filters.yaml")
    writeFileSync(filters, `filtering:\n  domains:\n    blocked: ["blocked.test"]\n`)
    writeFileSync(config, `server: {port: 0}\nrouting: {default_backend: "${origin.url}"}\nsecurity: {filters_file: "${filters}"}\nlogging: {access_log: false}\nmetrics: {enabled: false}\n`)
    program = await startProgram(["--config", config])
  })
  afterAll(async () => {
    agent.destroy()
    program.child.kill("SIGTERM")
    await program.exited
    await origin.close()
  })

  it("applies new rules without a restart or dropping the connection; rejects an invalid file, keeping the old rules", async () => {
    expect((await get(program.port, "app.test")).status).toBe(200)
    expect((await get(program.port, "blocked.test")).status).toBe(403)

    let mark = program.output().length
    writeFileSync(filters, `filtering:\n  domains:\n    blocked: ["app.test"]\n`)
    program.child.kill("SIGHUP")
    await outputMatches(program, /filters reloaded/, mark)
    const after = await get(program.port, "app.test")
    expect(after.status).toBe(403)
    expect(after.reused).toBe(true)
    expect(JSON.parse(after.body).rule).toBe("security.filtering.domains.blocked: app.test")
    expect((await get(program.port, "blocked.test")).status).toBe(200)

    mark = program.output().length
    writeFileSync(filters, `filtering:\n  mode: denylist\n`)
    program.child.kill("SIGHUP")
    const line = await outputMatches(program, /filters reload rejected.*/, mark)
    expect(line).toContain("filtering.mode")
    expect((await get(program.port, "app.test")).status).toBe(403)
    expect((await get(program.port, "blocked.test")).status).toBe(200)
    expect(program.child.exitCode).toBe(null)
  })

  it("threat: a deploy that removes the file — the reload is rejected naming security.filters_file; the rules in force stay", async () => {
    writeFileSync(filters, `filtering:\n  domains:\n    blocked: ["app.test"]\n`)
    let mark = program.output().length
    program.child.kill("SIGHUP")
    await outputMatches(program, /filters reloaded/, mark)
    expect((await get(program.port, "app.test")).status).toBe(403)

    rmSync(filters)
    mark = program.output().length
    program.child.kill("SIGHUP")
    const line = await outputMatches(program, /filters reload rejected.*/, mark)
    expect(line).toContain("security.filters_file")
    expect((await get(program.port, "app.test")).status).toBe(403)
    expect((await get(program.port, "blocked.test")).status).toBe(200)
  })
})

interface Reply {
  readonly status: number
  readonly cacheStatus: string
  readonly body: string
}

/** One GET on a fresh connection: origin-form `path`, or absolute-form (forward proxy). */
const fetchVia = (port: number, path: string, headers: Record<string, string> = {}) =>
  new Promise<Reply>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, headers }, (res) => {
      let body = ""
      res.setEncoding("latin1")
      res.on("data", (c) => (body += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, cacheStatus: String(res.headers["cache-status"] ?? ""), body }))
    })
    req.on("error", reject)
    req.end()
  })

describe("filters reload and the cache: stored responses are judged by the rules in force", () => {
  let origin: Origin
  let program: StartedProgram
  let filters: string
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      const url = req.url ?? ""
      if (url === "/eicar-revalidated") { // stored with a validator, revalidated on every use: the origin says 304
        if (req.headers["if-none-match"] === '"v1"') return void res.writeHead(304, { etag: '"v1"' }).end()
        res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=0", etag: '"v1"', "content-length": EICAR.length })
        return void res.end(EICAR, "latin1")
      }
      const [type, body] = url.startsWith("/video") ? ["video/mp4", "...."]
        : url.startsWith("/eicar-big") ? ["text/plain", EICAR + "x".repeat(8192)] // compressible: stored gzip-encoded
        : url.startsWith("/eicar") ? ["text/plain", EICAR]
        : ["text/plain", "clean"]
      res.writeHead(200, { "content-type": type, "cache-control": "max-age=300", "content-length": Buffer.byteLength(body, "latin1") })
      res.end(body, "latin1")
    })
    const config = writeTempConfig("")
    filters = join(dirname(config), "filters.yaml")
    writeFileSync(filters, `inspection: {enabled: false}\n`)
    writeFileSync(config, [
      `server: {port: 0}`,
      `routing: {default_backend: "${origin.url}"}`,
      `cache: {enabled: true}`,
      `compression: {enabled: true}`,
      `security: {filters_file: "${filters}", allow_private_destinations: ["127.0.0.0/8"]}`,
      `logging: {access_log: false}`,
      `metrics: {enabled: false}`,
      ``
    ].join("\n"))
    program = await startProgram(["--config", config])
  })
  afterAll(async () => {
    program.child.kill("SIGTERM")
    await program.exited
    await origin.close()
  })

  it("threat: malware stored before inspection was turned on — a reload's content-type and EICAR rules apply to cache hits (reverse and forward)", async () => {
    const forward = `${origin.url}/eicar-forward`
    for (const path of ["/video", "/eicar", forward, "/clean", "/eicar-revalidated"]) expect((await fetchVia(program.port, path)).status, path).toBe(200)
    const gzip = { "accept-encoding": "gzip" }
    expect((await fetchVia(program.port, "/eicar-big", gzip)).status).toBe(200)
    const gzipHit = await fetchVia(program.port, "/eicar-big", gzip)
    expect(gzipHit.cacheStatus).toContain("hit")
    const hit = await fetchVia(program.port, "/eicar")
    expect(hit.cacheStatus).toContain("hit")
    expect(hit.body).toContain(EICAR)
    const revalidated = await fetchVia(program.port, "/eicar-revalidated")
    expect(revalidated.cacheStatus).toContain("fwd=stale")
    expect(revalidated.body).toContain(EICAR)

    const mark = program.output().length
    writeFileSync(filters, `inspection: {enabled: true, eicar: true, blocked_content_types: ["video/*"]}\n`)
    program.child.kill("SIGHUP")
    await outputMatches(program, /filters reloaded/, mark)

    const video = await fetchVia(program.port, "/video")
    expect(video.status).toBe(403)
    // RFC 9211 §2.2: a stored response the rules refuse is a plain miss, not a Vary mismatch
    expect(video.cacheStatus).toContain("fwd=miss")
    expect(JSON.parse(video.body).rule).toBe("security.inspection.blocked_content_types: video/*")
    // a stored body replayed after a 304 is judged too (the origin's 304 carries no body to inspect)
    for (const path of ["/eicar", forward, "/eicar-revalidated"]) {
      const r = await fetchVia(program.port, path)
      expect(r.status, path).toBe(403)
      expect(r.body, path).not.toContain(EICAR)
      expect(JSON.parse(r.body).rule, path).toBe("security.inspection.eicar: EICAR-Test-File")
    }
    // a variant Gatehouse compressed was scanned as identity bytes on its way in: on a hit it is decoded for the scan
    const compressed = await fetchVia(program.port, "/eicar-big", gzip)
    expect(compressed.status).toBe(403)
    // what the rules in force pass is still served from the cache
    const clean = await fetchVia(program.port, "/clean")
    expect(clean.status).toBe(200)
    expect(clean.cacheStatus).toContain("hit")
    expect(origin.seen.filter((r) => r.url === "/clean").length).toBe(1)
  })
})
