import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { onTestFinished } from "vitest"
import { execFile } from "node:child_process"
import { writeFileSync } from "node:fs"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { runProgram, startProgram, writeTempConfig } from "../fixtures/program.ts"

const curl = (args: ReadonlyArray<string>): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile("curl", ["-sS", "--max-time", "10", ...args], (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr }))
  })

describe("the program as a user runs it", () => {
  it("--check-config accepts a valid file and exits 0", async () => {
    const r = await runProgram(["--config", writeTempConfig("server: {port: 9999}\n"), "--check-config"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("configuration OK")
  })

  it("--check-config names the key, the bad value and what is expected; exit code non-zero", async () => {
    const r = await runProgram(["--config", writeTempConfig("server:\n  port: 70000\n"), "--check-config"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("server.port")
    expect(r.stderr).toContain("70000")
    expect(r.stderr).toMatch(/expected .*65535/)
  })

  it("bad durations, unknown keys and env overrides are reported with their source", async () => {
    const dur = await runProgram(["--config", writeTempConfig("server: {timeouts: {read: soon}}\n"), "--check-config"])
    expect(dur.code).toBe(1)
    expect(dur.stderr).toContain("server.timeouts.read")
    const unknown = await runProgram(["--config", writeTempConfig("sever: {port: 1}\n"), "--check-config"])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("sever")
    const env = await runProgram(["--config", writeTempConfig(""), "--check-config"], { PROXY_PORT: "http" })
    expect(env.code).toBe(1)
    expect(env.stderr).toContain("env PROXY_PORT")
  })

  it("precedence: defaults < file < env < flags", async () => {
    const file = writeTempConfig("server: {port: 1111}\n")
    expect((await runProgram(["--config", file, "--check-config"])).stdout).toContain(":1111")
    expect((await runProgram(["--config", file, "--check-config"], { PROXY_PORT: "2222" })).stdout).toContain(":2222")
    expect((await runProgram(["--config", file, "--check-config", "--port", "3333"], { PROXY_PORT: "2222" })).stdout).toContain(":3333")
  })

  // --check-config refuses what start-up would refuse, naming the key (exit 1): it used to say OK for each
  const refusedByCheck: ReadonlyArray<readonly [string, string, Record<string, string>, string, RegExp]> = [
    ["a default_backend port out of range", `routing: {default_backend: "http://127.0.0.1:99999"}\n`, {}, "routing.default_backend", /port 1-65535/],
    ["DEFAULT_BACKEND with a port out of range", "", { DEFAULT_BACKEND: "http://127.0.0.1:70000" }, "env DEFAULT_BACKEND", /port 1-65535/],
    ["a rule target port out of range", `routing: {rules: [{match: {host: "a.com"}, forward: {target: "http://a:123456"}}]}\n`, {}, "routing.rules.0.forward.target", /port 1-65535/],
    ["a missing cli.working_dir with cli enabled", `cli: {enabled: true, working_dir: /nonexistent}\nsecurity: {filters_file: ""}\n`, {}, "cli.working_dir", /an existing directory/],
    ["a server.host that is not a host", `server: {host: "not a host!"}\n`, {}, "server.host", /an IP address .* or a host name/],
    ["a server.host that does not resolve", `server: {host: "no-such-host.invalid"}\n`, {}, "server.host", /an address of this machine/],
    // a limit read as "unlimited" turned into "refuse everything" (429, remaining=NaN) or an invalid RateLimit-Policy
    ["RATE_LIMIT_RPS=Infinity", "", { RATE_LIMIT_RPS: "Infinity" }, "env RATE_LIMIT_RPS", /got Infinity; expected a rate in requests per second from 0\.001 to 1000000/],
    ["requests_per_second: .inf", "security: {rate_limiting: {requests_per_second: .inf}}\n", {}, "security.rate_limiting.requests_per_second", /got Infinity; expected .*from 0\.001 to 1000000/],
    ["RATE_LIMIT_RPS=1e-300", "", { RATE_LIMIT_RPS: "1e-300" }, "env RATE_LIMIT_RPS", /got 1e-300; expected .*from 0\.001 to 1000000/],
    ["PROXY_PORT=-1, with the range", "", { PROXY_PORT: "-1" }, "env PROXY_PORT", /expected a port from 0 to 65535/],
    ["cli.process_timeout: 0s (it killed every command at once)", "cli: {process_timeout: 0s}\n", {}, "cli.process_timeout", /from 1ms to 24d.*not 0/],
    ["server.timeouts.read: 0s (it turned the head timeout off: slowloris)", "server: {timeouts: {read: 0s}}\n", {}, "server.timeouts.read", /from 1ms to 24d.*not 0/],
    ["PROXY_HOST that does not resolve, named as the env var", "", { PROXY_HOST: "no-such-host.invalid" }, "(env PROXY_HOST)", /server\.host: got "no-such-host\.invalid"; expected an address of this machine/]
  ]
  for (const [what, yaml, env, named, expected] of refusedByCheck) {
    it(`--check-config refuses ${what}, naming ${named}`, async () => {
      const r = await runProgram(["--config", writeTempConfig(`metrics: {enabled: false}\n${yaml}`), "--check-config"], env)
      expect(r.code).toBe(1)
      expect(r.stdout).not.toContain("configuration OK")
      expect(r.stderr).toContain(named)
      expect(r.stderr).toMatch(expected)
    })
  }

  it("--check-config refuses metrics.port equal to server.port on an overlapping host (start-up would fail with EADDRINUSE)", async () => {
    const r = await runProgram(["--config", writeTempConfig("server: {host: 0.0.0.0, port: 24081}\nmetrics: {port: 24081}\nsecurity: {filters_file: \"\"}\n"), "--check-config"])
    expect(r.code).toBe(1)
    expect(r.stdout).not.toContain("configuration OK")
    expect(r.stderr).toContain("invalid configuration at metrics.port: got 24081; expected a port other than server.port 24081")
  })

  it("start-up with a default_backend port out of range exits 1 naming the key, not with a TypeError stack", async () => {
    const r = await runProgram(["--config", writeTempConfig(`routing: {default_backend: "http://127.0.0.1:99999"}\nmetrics: {enabled: false}\n`), "--port", "0"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("routing.default_backend")
    expect(r.stderr).not.toContain("TypeError")
  })

  it("start-up on a host that does not resolve exits 1 naming server.host, not server.port", async () => {
    const r = await runProgram(["--config", writeTempConfig("metrics: {enabled: false}\n"), "--port", "0", "--host", "no-such-host.invalid"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("invalid configuration at server.host")
    expect(r.stderr).not.toContain("server.port")
  })

  it("a config file whose top level is a scalar or a list is refused, naming the file; an empty one is valid", async () => {
    for (const yaml of ["hello\n", "- a\n"]) {
      const file = writeTempConfig(yaml)
      const r = await runProgram(["--config", file, "--check-config"])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain("expected a mapping (key: value) at the top level")
      expect(r.stderr).toContain(file)
    }
    expect((await runProgram(["--config", writeTempConfig(""), "--check-config"])).code).toBe(0)
  })

  it("--env NAME reads the overlay beside the --config file (FILE.NAME.yaml), as --help says", async () => {
    const file = writeTempConfig("server: {port: 1111}\n")
    const overlay = file.replace(/proxy\.yaml$/, "proxy.dev.yaml")
    writeFileSync(overlay, "server: {port: 2222}\n")
    const r = await runProgram(["--config", file, "--env", "dev", "--check-config"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`${file} + ${overlay}`)
    expect(r.stdout).toContain(":2222")
    const help = await runProgram(["--help"])
    expect(help.stdout).toContain("FILE.NAME.yaml for --config FILE.yaml")
  })

  it("a missing --config file stops start-up with a clear message", async () => {
    const r = await runProgram(["--config", "/nonexistent/proxy.yaml"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("/nonexistent/proxy.yaml")
  })
})

describe("npm start -- --config FILE, driven with curl", () => {
  let origin: Origin
  let slowDone = 0
  beforeAll(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url === "/slow") {
        setTimeout(() => { slowDone++; res.end("slow-done") }, 800)
        return
      }
      res.writeHead(200, { "content-type": "text/plain" })
      res.end(`hello from origin ${req.url}`)
    })
  })
  afterAll(() => origin.close())

  it("threat: public metrics — under --env prod, GET /metrics on the main port is routed, and metrics answer on their logged port only", async () => {
    // --host keeps the test off 0.0.0.0; METRICS_PORT=0 picks a free port, which the log must tell
    const prog = await startProgram(["--env", "prod", "--host", "127.0.0.1", "--port", "0"], { METRICS_PORT: "0", DEFAULT_BACKEND: origin.url })
    onTestFinished(() => { if (prog.child.exitCode === null) prog.child.kill("SIGKILL") })
    const main = await curl(["-s", `http://127.0.0.1:${prog.port}/metrics`])
    expect(main.stdout).toBe("hello from origin /metrics")
    const logged = /"metrics listening".*?"host":"127\.0\.0\.1","port":(\d+)/.exec(prog.output())
    expect(logged).not.toBeNull()
    const metricsPort = Number(logged![1])
    expect(metricsPort).toBeGreaterThan(0)
    expect(metricsPort).not.toBe(prog.port)
    const scraped = await curl([`http://127.0.0.1:${metricsPort}/metrics`])
    expect(scraped.stdout).toContain("gatehouse_http_requests_total")
    prog.child.kill("SIGTERM")
    expect(await prog.exited).toBe(0)
  })

  it("curl -x (forward), curl -p -x (CONNECT tunnel), reverse proxy; SIGTERM drains and exits 0", async () => {
    const file = writeTempConfig(
      `server: {port: 0, connect: {allowed_ports: [${origin.port}]}, timeouts: {shutdown_grace: 5s}}\n` +
        `routing: {default_backend: "${origin.url}"}\nlogging: {format: json}\nmetrics: {port: 0}\n` +
        // the test origin is on loopback, which the SSRF guard refuses unless allowed
        `security: {allow_private_destinations: ["127.0.0.0/8"]}\n`
    )
    const prog = await startProgram(["--config", file])
    onTestFinished(() => { if (prog.child.exitCode === null) prog.child.kill("SIGKILL") })
    const proxy = `http://127.0.0.1:${prog.port}`
    const fwd = await curl(["-x", proxy, `${origin.url}/fwd`])
    expect(fwd.stdout).toBe("hello from origin /fwd")
    const tunnel = await curl(["-p", "-x", proxy, `${origin.url}/tunnel`])
    expect(tunnel.stdout).toBe("hello from origin /tunnel")
    const rev = await curl([`${proxy}/rev`])
    expect(rev.stdout).toBe("hello from origin /rev")
    // an in-flight request survives SIGTERM; readiness turns 503 while draining
    const slow = curl([`${proxy}/slow`])
    await new Promise((r) => setTimeout(r, 200))
    prog.child.kill("SIGTERM")
    await new Promise((r) => setTimeout(r, 100))
    const slowRes = await slow
    expect(slowRes.stdout).toBe("slow-done")
    expect(await prog.exited).toBe(0)
    const out = prog.output()
    expect(out).toContain("gatehouse draining")
    expect(out).toMatch(/"method":"CONNECT"/)
    expect(out).toMatch(/"url":"\/rev".*"status":200/)
  })
})
