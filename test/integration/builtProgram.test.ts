/**
 * `npm start` runs the compiled program (`npm run build`: tsc -p tsconfig.build.json → dist/), not the
 * TypeScript sources through Node's type stripping. The other program tests run the sources; these
 * build the way `npm start` does and drive the compiled entry, so a broken build config fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { request } from "node:http"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { BUILT_ENTRY, ROOT, runProgram, startProgram, writeTempConfig } from "../fixtures/program.ts"

const build = (): Promise<{ code: number; output: string }> =>
  new Promise((resolve) => {
    execFile("npm", ["run", "--silent", "build"], { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), output: stdout + stderr }))
  })

const get = (port: number, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> =>
  new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => { body += c })
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    }).on("error", reject).end()
  })

describe("npm start's compiled program (dist/src/main.js)", () => {
  let origin: Origin
  beforeAll(async () => {
    const built = await build()
    expect(built.output).toBe("")
    expect(built.code).toBe(0)
    origin = await startOrigin((_req, res) => res.end("from-origin"))
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
    const config = writeTempConfig([
      "server: {host: 127.0.0.1, port: 0}",
      `routing: {default_backend: "${origin.url}", rules: []}`,
      "logging: {level: info, format: json}",
      `security: {allow_private_destinations: ["127.0.0.1/32"]}`,
      ""
    ].join("\n"))
    const program = await startProgram(["--config", config], {}, BUILT_ENTRY)
    const res = await get(program.port, "/built")
    expect(res.status).toBe(200)
    expect(res.body).toBe("from-origin")
    expect(res.headers["via"]).toBe("1.1 gatehouse")
    expect(origin.seen.at(-1)?.url).toBe("/built")
    program.child.kill("SIGTERM")
    expect(await program.exited).toBe(0)
    expect(program.output()).toMatch(/"type":"access".*"url":"\/built","status":200/)
  })
})
