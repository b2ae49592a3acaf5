/**
 * config/filters.yaml reload on SIGHUP, against the program as a user runs it (node src/main.ts as a
 * child process, a real signal): new rules apply without a restart and on a kept-alive connection;
 * an invalid file is rejected and the rules in force stay.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { writeFileSync } from "node:fs"
import { Agent, request } from "node:http"
import { dirname, join } from "node:path"
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
})
