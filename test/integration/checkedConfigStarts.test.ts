/**
 * "`--check-config` OK means the proxy starts" (README), for the filter-related keys whose values the
 * schema and the runtime once read differently, against the program as a user runs it:
 * bracketed IPv6 in the CIDR lists (one parser, cidr.ts, for both), and a `security.filters_file`
 * that does not exist (refused by both, naming the key).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { writeFileSync } from "node:fs"
import { createServer, request, type Server } from "node:http"
import { dirname, join } from "node:path"
import { runProgram, type StartedProgram, startProgram, writeTempConfig } from "../fixtures/program.ts"

/** One forward-proxy GET from ::1 through the proxy on ::1. */
const forwardGet = (proxyPort: number, url: string) =>
  new Promise<number>((resolve, reject) => {
    const req = request({ host: "::1", port: proxyPort, path: url, agent: false }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", reject)
    req.end()
  })

describe("bracketed IPv6 CIDRs ([::1]) in rate_limiting.exempt and allow_private_destinations", () => {
  let origin: Server
  let originPort: number
  let program: StartedProgram
  let config: string
  beforeAll(async () => {
    origin = createServer((_req, res) => res.end("ok"))
    originPort = await new Promise<number>((resolve) => origin.listen(0, "::1", () => resolve((origin.address() as { port: number }).port)))
    config = writeTempConfig([
      `server: {host: "::1", port: 0}`,
      `logging: {access_log: false}`,
      `metrics: {enabled: false}`,
      `security:`,
      `  filters_file: ""`,
      `  allow_private_destinations: ["[::1]"]`,
      `  rate_limiting: {requests_per_second: 0.001, burst: 1, exempt: ["[::1]/128"]}`,
      ``
    ].join("\n"))
  })
  afterAll(async () => {
    if (program !== undefined) {
      program.child.kill("SIGTERM")
      await program.exited
    }
    await new Promise<void>((resolve) => origin.close(() => resolve()))
  })

  it("--check-config OK means start-up succeeds, and the bracketed rules apply (SSRF allow list, rate-limit exemption)", async () => {
    const checked = await runProgram(["--config", config, "--check-config"])
    expect(checked.code, checked.stderr).toBe(0)
    program = await startProgram(["--config", config])
    // burst 1 at 0.001/s: without the exemption the second request would be 429; without the allow
    // list entry, [::1] (loopback) would be refused 403 by the SSRF guard
    for (let i = 0; i < 3; i++) expect(await forwardGet(program.port, `http://[::1]:${originPort}/`)).toBe(200)
  })
})

describe("security.filters_file set to a path that does not exist", () => {
  it("threat: a wrong path silently dropping every filter rule — --check-config and start-up both refuse it, naming the key", async () => {
    const config = writeTempConfig("")
    const missing = join(dirname(config), "no-such-filters.yaml")
    writeFileSync(config, `server: {port: 0}\nmetrics: {enabled: false}\nsecurity: {filters_file: "${missing}"}\n`)
    const checked = await runProgram(["--config", config, "--check-config"])
    expect(checked.code).toBe(1)
    expect(checked.stderr).toContain("security.filters_file")
    expect(checked.stderr).toContain(missing)
    const started = await runProgram(["--config", config])
    expect(started.code).not.toBe(0)
    expect(started.stderr + started.stdout).toContain("security.filters_file")
  })
})
