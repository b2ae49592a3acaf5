/**
 * POST /cli/execute against the real proxy and real child processes (test/fixtures/cli/*.mjs run
 * with this Node). Streaming, stdin, encodings, exits, kills, limits, auth and the allowlist.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { type IncomingMessage, request } from "node:http"
import { connect } from "node:net"
import { networkInterfaces, tmpdir } from "node:os"
import { join } from "node:path"
import { allEvents, type CliEvent, eventReader, execute, fixture, isRunning, NODE, outputOf, waitGone } from "../fixtures/cli.ts"
import { sample, scrape } from "../fixtures/metrics.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

const TOKEN = "s3cret-token"
const PYTHON3 = "/usr/bin/python3"
const exitOf = (events: ReadonlyArray<CliEvent>) => events.at(-1)!

/** POST /cli/execute with any headers (fetch would not send our Host): status and body text. */
const post = (port: number, body: unknown, headers: Record<string, string>): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const text = JSON.stringify(body)
    const req = request({ host: "127.0.0.1", port, path: "/cli/execute", method: "POST", agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers } }, (res) => {
      let got = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (got += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: got }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end(text)
  })

/** The access-log entry a predicate picks, once written (bounded wait: lines are written when a request ends). */
const logged = async (proxy: RunningProxy, pick: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
  for (let waited = 0; waited < 5000; waited += 20) {
    const found = proxy.entries().find(pick)
    if (found !== undefined) return found
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error("no such access-log entry")
}

describe("POST /cli/execute", () => {
  let proxy: RunningProxy
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gatehouse-cli-"))
    process.env.GATEHOUSE_TEST_SECRET = "must-not-leak"
    proxy = await startProxy({
      cli: {
        enabled: true,
        auth_token: TOKEN,
        max_concurrent: 8,
        process_timeout: "10s",
        max_stdin_bytes: "64KB",
        working_dir: dir,
        env: { GREETING: "hi" },
        allowed_commands: [NODE, PYTHON3]
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    delete process.env.GATEHOUSE_TEST_SECRET
    rmSync(dir, { recursive: true, force: true })
  })

  it("streams start, stdout lines and exit as NDJSON over chunked encoding", async () => {
    const res = await execute(proxy.url, { command: "node", args: [fixture("ticker.mjs"), "a", "3", "10"] }, { token: TOKEN })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("application/x-ndjson")
    expect(res.headers.get("transfer-encoding")).toBe("chunked")
    const events = await allEvents(res)
    expect(events[0]?.type).toBe("start")
    expect(typeof events[0]?.pid).toBe("number")
    expect(outputOf(events, "stdout").toString()).toBe("a line-1\na line-2\na line-3\n")
    expect(exitOf(events)).toMatchObject({ type: "exit", code: 0, signal: null, timed_out: false, killed: null })
    const entry = proxy.entries().at(-1)!
    expect(entry.cli).toMatchObject({ command: NODE, args: 4, exit_code: 0, killed: null })
    expect(entry.status).toBe(200)
    expect(entry.bytes_out).toBeGreaterThan(0)
  })

  it.skipIf(!existsSync(PYTHON3))("resolves a bare name to its allow-listed path (python3 → /usr/bin/python3, a symlink)", async () => {
    const events = await allEvents(await execute(proxy.url, { command: "python3", args: ["-c", "import sys; print(sys.argv[1:])", "a b", "$x"] }, { token: TOKEN }))
    expect(outputOf(events, "stdout").toString()).toBe("['a b', '$x']\n")
    expect(exitOf(events).code).toBe(0)
  })

  it("delivers a line while the process is still running (live streaming, not a burst at the end)", async () => {
    const gate = join(dir, `gate-${Date.now()}`)
    const res = await execute(proxy.url, { command: "node", args: [fixture("gate.mjs"), gate] }, { token: TOKEN })
    const events = eventReader(res)
    const start = await events.next()
    const first = await events.next()
    expect(first).toEqual({ type: "stdout", data: "first\n" })
    // The program cannot print "second" (or exit) before the gate file exists, which we create only now.
    expect(isRunning(start!.pid!)).toBe(true)
    writeFileSync(gate, "")
    const rest = await events.rest()
    expect(outputOf(rest, "stdout").toString()).toBe("second\n")
    expect(exitOf(rest)).toMatchObject({ type: "exit", code: 0 })
  })

  it("writes stdin to the process and closes it", async () => {
    const input = "line one\nline two ✓\n"
    const events = await allEvents(await execute(proxy.url, { command: "node", args: [fixture("echo-stdin.mjs")], stdin: input }, { token: TOKEN }))
    expect(outputOf(events, "stdout").toString()).toBe(input)
    expect(outputOf(events, "stderr").toString()).toBe(`bytes=${Buffer.byteLength(input)}\n`)
  })

  it("stream: false answers one JSON document after the process ends", async () => {
    const res = await execute(proxy.url, { command: "node", args: [fixture("echo-stdin.mjs")], stdin: "abc", stream: false }, { token: TOKEN })
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe("application/json")
    const body = await res.json() as Record<string, unknown>
    expect(body).toMatchObject({ stdout: "abc", stderr: "bytes=3\n", code: 0, signal: null, timed_out: false })
    expect(typeof body.duration_ms).toBe("number")
  })

  it("sends output that is not UTF-8 as base64, and keeps a character split across writes as text", async () => {
    const events = await allEvents(await execute(proxy.url, { command: "node", args: [fixture("bytes.mjs")] }, { token: TOKEN }))
    const stdout = events.filter((e) => e.type === "stdout")
    expect(stdout.every((e) => e.encoding === "base64")).toBe(true)
    expect([...outputOf(events, "stdout")]).toEqual([0xff, 0xfe, 0x00, 0x41, 0xc3])
    const stderr = events.filter((e) => e.type === "stderr")
    expect(stderr.every((e) => e.encoding === undefined)).toBe(true)
    expect(stderr.map((e) => e.data).join("")).toBe("é-ok\n")
    const json = await (await execute(proxy.url, { command: "node", args: [fixture("bytes.mjs")], stream: false }, { token: TOKEN })).json() as Record<string, unknown>
    expect(json.stdout_encoding).toBe("base64")
    expect([...Buffer.from(json.stdout as string, "base64")]).toEqual([0xff, 0xfe, 0x00, 0x41, 0xc3])
    expect(json.stderr).toBe("é-ok\n")
  })

  it("reports exit codes and deaths by signal", async () => {
    const code = await allEvents(await execute(proxy.url, { command: "node", args: [fixture("exit.mjs"), "code", "3"] }, { token: TOKEN }))
    expect(exitOf(code)).toMatchObject({ code: 3, signal: null })
    const signal = await allEvents(await execute(proxy.url, { command: "node", args: [fixture("exit.mjs"), "signal", "SIGKILL"] }, { token: TOKEN }))
    expect(exitOf(signal)).toMatchObject({ code: null, signal: "SIGKILL", timed_out: false, killed: null })
  })

  it("keeps several concurrent executions' output apart", async () => {
    const tags = ["alpha", "beta", "gamma", "delta"]
    const results = await Promise.all(tags.map(async (tag) =>
      [tag, await allEvents(await execute(proxy.url, { command: "node", args: [fixture("ticker.mjs"), tag, "5", "20"] }, { token: TOKEN }))] as const
    ))
    for (const [tag, events] of results) {
      expect(outputOf(events, "stdout").toString()).toBe([1, 2, 3, 4, 5].map((i) => `${tag} line-${i}\n`).join(""))
      expect(exitOf(events).code).toBe(0)
    }
  })

  it("kills the process group when the client disconnects (no orphans left)", async () => {
    const abort = new AbortController()
    const res = await execute(proxy.url, { command: "node", args: [fixture("sleeper.mjs"), "--child"] }, { token: TOKEN, signal: abort.signal })
    const events = eventReader(res)
    await events.next()
    const ready = JSON.parse((await events.next())!.data!) as { pid: number; child: number }
    expect(isRunning(ready.pid) && isRunning(ready.child)).toBe(true)
    abort.abort()
    expect(await waitGone(ready.pid)).toBe(true)
    expect(await waitGone(ready.child)).toBe(true)
  })

  it("logs the signal that ended a process killed because its client left, and killed: interrupted", async () => {
    const abort = new AbortController()
    const res = await execute(proxy.url, { command: "node", args: [fixture("sleeper.mjs"), "--child"] }, { token: TOKEN, signal: abort.signal })
    const events = eventReader(res)
    const start = await events.next()
    await events.next()
    abort.abort()
    const entry = await logged(proxy, (e) => (e.cli as { pid?: number } | undefined)?.pid === start!.pid)
    expect(entry.cli).toMatchObject({ command: NODE, exit_code: null, signal: "SIGTERM", killed: "interrupted" })
    expect(entry.outcome).toBe("client_abort")
    expect(sample(await scrape(proxy.metricsPort), "gatehouse_cli_processes_finished_total", { outcome: "interrupted" })).toBeGreaterThanOrEqual(1)
  })

  it("gives children only PATH, LANG and cli.env, in cli.working_dir (no proxy secrets)", async () => {
    const events = await allEvents(await execute(proxy.url, { command: NODE, args: [fixture("argv.mjs")] }, { token: TOKEN }))
    const seen = JSON.parse(outputOf(events, "stdout").toString()) as { cwd: string; env: Record<string, string> }
    expect(seen.env.GATEHOUSE_TEST_SECRET).toBeUndefined()
    expect(seen.env.GREETING).toBe("hi")
    expect(Object.keys(seen.env).filter((k) => !["PATH", "LANG", "GREETING"].includes(k))).toEqual([])
    expect(seen.cwd).toBe(dir)
  })

  describe("threat: command injection — args are argv, never shell text", () => {
    it("passes shell metacharacters through literally", async () => {
      const tricky = ["; echo pwned", "$(id)", "`id`", "a|b && c", "*", "$HOME", "'\"", "\n--flag"]
      const events = await allEvents(await execute(proxy.url, { command: "node", args: [fixture("argv.mjs"), ...tricky] }, { token: TOKEN }))
      expect((JSON.parse(outputOf(events, "stdout").toString()) as { argv: Array<string> }).argv).toEqual(tricky)
    })
  })

  describe("threat: allowlist bypass → 403", () => {
    const refused = async (command: string) => {
      const res = await execute(proxy.url, { command, args: ["-e", "1"] }, { token: TOKEN })
      const body = await res.json() as { error: string; detail: string }
      return { status: res.status, ...body }
    }
    it("refuses programs that are not listed (sh, /bin/sh, /usr/bin/env)", async () => {
      for (const command of ["sh", "/bin/sh", "/usr/bin/env", "bash"]) {
        const r = await refused(command)
        expect(r.status, command).toBe(403)
        expect(r.error).toBe("command_not_allowed")
      }
    })
    it("refuses ../ and relative paths to an allowed program", async () => {
      const parts = NODE.split("/")
      const dotdot = [...parts.slice(0, -1), "..", parts.at(-2), parts.at(-1)].join("/")
      for (const command of [dotdot, `./node`, `../node`, `bin/node`, `${NODE}/`, `/./${NODE.slice(1)}`]) {
        expect((await refused(command)).status, command).toBe(403)
      }
    })
    it("refuses a symlink elsewhere, even one named like an allowed program", async () => {
      const link = join(dir, "node")
      symlinkSync("/bin/sh", link)
      const other = join(dir, "allowed-looking")
      symlinkSync(NODE, other)
      expect((await refused(link)).status).toBe(403)
      expect((await refused(other)).status).toBe(403)
    })
    it("never searches PATH: a bare name must be the basename of an allowed entry", async () => {
      expect((await refused("perl")).status).toBe(403)
      expect((await refused("python")).status).toBe(403)
      expect((await refused("node ")).status).toBe(403)
    })
  })

  describe("auth (cli.auth_token)", () => {
    it("401 without a token or with a wrong one, with WWW-Authenticate", async () => {
      for (const token of [undefined, "wrong", `${TOKEN}x`, TOKEN.slice(0, -1)]) {
        const res = await execute(proxy.url, { command: "node", args: ["-e", "1"] }, token === undefined ? {} : { token })
        expect(res.status).toBe(401)
        expect(res.headers.get("www-authenticate")).toContain("Bearer")
        await res.body?.cancel()
      }
      const basic = await execute(proxy.url, { command: "node" }, { headers: { authorization: `Basic ${TOKEN}` } })
      expect(basic.status).toBe(401)
    })
    it("with a token, the Host a client names does not matter (the token is the check)", async () => {
      const r = await post(proxy.port, { command: "node", args: ["-e", "1"], stream: false }, { host: "proxy.example.net:8080", authorization: `Bearer ${TOKEN}` })
      expect(r.status).toBe(200)
    })
  })

  describe("request validation", () => {
    const problem = async (body: unknown, headers?: Record<string, string>) => {
      const res = await execute(proxy.url, body, { token: TOKEN, ...(headers === undefined ? {} : { headers }) })
      return { status: res.status, ...(await res.json() as { error: string; detail: string }) }
    }
    it("400 naming the field path", async () => {
      expect(await problem({ args: [] })).toMatchObject({ status: 400, error: "invalid_body" })
      expect((await problem({ args: [] })).detail).toMatch(/^command: /)
      expect((await problem({ command: "node", args: "x" })).detail).toMatch(/^args: /)
      expect((await problem({ command: "node", args: ["ok", 5] })).detail).toMatch(/^args\.1: /)
      expect((await problem({ command: "node", stream: "yes" })).detail).toMatch(/^stream: /)
      expect((await problem({ command: "node", args: Array.from({ length: 257 }, () => "a") })).detail).toMatch(/^args: /)
      expect((await problem({ command: "node", extra: 1 })).detail).toMatch(/^extra: /)
      expect((await problem({ command: "" })).status).toBe(400)
      expect((await problem({ command: "node", args: ["a\u0000b"] })).detail).toMatch(/^args\.0: /)
      expect(await problem("{not json")).toMatchObject({ status: 400, error: "invalid_body" })
    })
    it("oversize: stdin over max_stdin_bytes is refused naming stdin, not as a generic body size", async () => {
      expect(await problem({ command: "node", stdin: "x".repeat(64 * 1024 + 1) })).toMatchObject({ status: 400, error: "invalid_body", detail: "stdin: exceeds 65536 bytes (cli.max_stdin_bytes)" })
      expect(await problem({ command: "node", stdin: "é".repeat(32 * 1024 + 1) })).toMatchObject({ status: 400, detail: "stdin: exceeds 65536 bytes (cli.max_stdin_bytes)" })
      expect(await problem({ command: "node", stdin: "x".repeat(300 * 1024) })).toMatchObject({ status: 400, detail: "stdin: exceeds 65536 bytes (cli.max_stdin_bytes)" })
    })
    it("threat: cross-site request from a browser — 415 unless Content-Type is application/json", async () => {
      expect((await problem({ command: "node" }, { "content-type": "text/plain" })).status).toBe(415)
    })
    it("405 for other methods", async () => {
      const res = await fetch(`${proxy.url}/cli/execute`, { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(res.status).toBe(405)
      expect(res.headers.get("allow")).toBe("POST")
    })
  })
})

describe("POST /cli/execute body size follows the documented limits (max_stdin_bytes: 1KB)", () => {
  let proxy: RunningProxy
  beforeAll(async () => {
    proxy = await startProxy({ cli: { enabled: true, max_stdin_bytes: "1KB", allowed_commands: [NODE] } })
  })
  afterAll(() => proxy.stop())
  const lengths = async (args: ReadonlyArray<string>, stdin?: string) => {
    const res = await execute(proxy.url, { command: "node", args: [fixture("arglens.mjs"), ...args], ...(stdin === undefined ? {} : { stdin }), stream: false })
    const body = await res.json() as { stdout?: string; code?: number; detail?: string }
    return { status: res.status, body, lengths: res.status === 200 ? JSON.parse(body.stdout!) as Array<number> : [] }
  }
  const problem = async (body: unknown) => {
    const res = await execute(proxy.url, body)
    return { status: res.status, ...(await res.json() as { error: string; detail: string }) }
  }

  it("accepts three 30 KB arguments and no stdin (each within the 32 KiB per-argument limit)", async () => {
    const r = await lengths(["a", "b", "c"].map((c) => c.repeat(30_000)))
    expect(r.status).toBe(200)
    expect(r.lengths).toEqual([30_000, 30_000, 30_000])
  })

  it("accepts 60 arguments of 32 KiB (~2 MB of body, far over max_stdin_bytes)", async () => {
    const r = await lengths(Array.from({ length: 60 }, () => "z".repeat(32 * 1024)))
    expect(r.status).toBe(200)
    expect(r.lengths).toEqual(Array.from({ length: 60 }, () => 32 * 1024))
  })

  it("measures arguments decoded: 32 KiB of control characters (6 bytes each as JSON) is within the limit", async () => {
    const control = "\u0001".repeat(32 * 1024)
    const r = await lengths([control, control, control], "\u0002".repeat(1024))
    expect(r.status).toBe(200)
    expect(r.lengths).toEqual([32 * 1024, 32 * 1024, 32 * 1024])
  })

  it("oversize: names the argument over 32 KiB (UTF-8 bytes, not characters)", async () => {
    const ok = "k".repeat(32 * 1024)
    expect(await problem({ command: "node", args: [ok, ok, ok, ok + "k"] })).toMatchObject({ status: 400, error: "invalid_body", detail: "args.3: exceeds 32768 bytes" })
    expect(await problem({ command: "node", args: ["é".repeat(16 * 1024 + 1)] })).toMatchObject({ status: 400, detail: "args.0: exceeds 32768 bytes" })
    expect(await problem({ command: "node", args: Array.from({ length: 257 }, () => "a") })).toMatchObject({ status: 400, detail: "args: more than 256 arguments" })
  })

  it("oversize: names stdin, and refuses it before reading the rest of a large body", async () => {
    expect(await problem({ command: "node", stdin: "s".repeat(1025) })).toMatchObject({ status: 400, detail: "stdin: exceeds 1024 bytes (cli.max_stdin_bytes)" })
    const res = await execute(proxy.url, { command: "node", stdin: "s".repeat(8 * 1024 * 1024) })
    expect(res.status).toBe(400)
    expect(res.headers.get("connection")).toBe("close")
    expect(((await res.json()) as { detail: string }).detail).toBe("stdin: exceeds 1024 bytes (cli.max_stdin_bytes)")
    const entry = proxy.entries().at(-1)!
    expect(entry.bytes_in as number).toBeLessThan(8 * 1024 * 1024)
  })

  it("an argument list longer than the OS takes (E2BIG) is a 400 naming args, not a 500", async () => {
    const r = await problem({ command: "node", args: Array.from({ length: 256 }, () => "x".repeat(32 * 1024)) })
    expect(r).toMatchObject({ status: 400, error: "invalid_body" })
    expect(r.detail).toMatch(/^args: .*E2BIG/)
  })

  it("oversize: a body larger than any request within the limits could be → 413 (chunked, so counted as it arrives)", async () => {
    const sock = connect(proxy.port, "127.0.0.1")
    try {
      const answer = new Promise<string>((resolve) => {
        let text = ""
        sock.on("data", (c: Buffer) => { text += c.toString("latin1") })
        sock.on("close", () => resolve(text))
        sock.on("error", () => resolve(text))
      })
      sock.write("POST /cli/execute HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
      const spaces = " ".repeat(1024 * 1024)
      const chunk = `${spaces.length.toString(16)}\r\n${spaces}\r\n`
      sock.write(`12\r\n{"command":"node",\r\n`)
      for (let i = 0; i < 64 && !sock.destroyed; i++) {
        if (!sock.write(chunk)) await new Promise((r) => { sock.once("drain", r); sock.once("close", r) })
      }
      expect((await answer).split("\r\n")[0]).toMatch(/^HTTP\/1\.1 413 /)
    } finally {
      sock.destroy()
    }
  })
})

describe("POST /cli/execute under server.limits.max_body_bytes", () => {
  it("a chunked body over max_body_bytes → 413, as on every other request, though the CLI limits would allow it", async () => {
    const proxy = await startProxy({ server: { limits: { max_body_bytes: "64KB" } }, cli: { enabled: true, allowed_commands: [NODE] } })
    try {
      const sock = connect(proxy.port, "127.0.0.1")
      const answer = new Promise<string>((resolve) => {
        let text = ""
        sock.on("data", (c: Buffer) => { text += c.toString("latin1") })
        sock.on("close", () => resolve(text))
        sock.on("error", () => resolve(text))
      })
      // 100 KiB of stdin: within max_stdin_bytes (1 MB) and the CLI's own body cap, over 64 KB
      const body = JSON.stringify({ command: "node", args: ["-e", ""], stdin: "s".repeat(100 * 1024) })
      sock.write("POST /cli/execute HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
      sock.write(`${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`)
      expect((await answer).split("\r\n")[0]).toMatch(/^HTTP\/1\.1 413 /)
      sock.destroy()
    } finally {
      await proxy.stop()
    }
  })
})

describe("POST /cli/execute limits", () => {
  let proxy: RunningProxy
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gatehouse-cli-"))
    proxy = await startProxy({
      cli: {
        enabled: true,
        max_concurrent: 1,
        process_timeout: "400ms",
        kill_grace: "200ms",
        max_output_bytes: "10KB",
        allowed_commands: [NODE]
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it("process_timeout sends SIGTERM; the exit event says timed_out", async () => {
    const events = await allEvents(await execute(proxy.url, { command: "node", args: [fixture("sleeper.mjs")] }))
    expect(exitOf(events)).toMatchObject({ type: "exit", code: null, signal: "SIGTERM", timed_out: true, killed: "timeout" })
    expect(proxy.entries().at(-1)?.outcome).toBe("cli_timeout")
  })

  it("a process that ignores SIGTERM gets SIGKILL after kill_grace", async () => {
    const events = await allEvents(await execute(proxy.url, { command: "node", args: [fixture("sleeper.mjs"), "--ignore-term"] }))
    expect(outputOf(events, "stderr").toString()).toContain("ignoring SIGTERM")
    expect(exitOf(events)).toMatchObject({ signal: "SIGKILL", timed_out: true })
  })

  it("max_output_bytes cuts the output at the limit and kills the process", async () => {
    const events = await allEvents(await execute(proxy.url, { command: "node", args: [fixture("flood.mjs")] }))
    expect(outputOf(events, "stdout").length).toBe(10 * 1024)
    expect(exitOf(events)).toMatchObject({ type: "exit", killed: "max_output_bytes", timed_out: false })
    expect(exitOf(events).code).not.toBe(0)
  })

  it("max_concurrent: the next request gets 429 with Retry-After (no queue)", async () => {
    const gate = join(dir, "gate-concurrency")
    const running = await execute(proxy.url, { command: "node", args: [fixture("gate.mjs"), gate] })
    const events = eventReader(running)
    await events.next()
    const second = await execute(proxy.url, { command: "node", args: ["-e", "1"] })
    expect(second.status).toBe(429)
    expect(second.headers.get("retry-after")).toBe("1")
    const logged = proxy.lines.length
    writeFileSync(gate, "")
    expect(exitOf(await events.rest()).code).toBe(0)
    // the slot is free once the first request is finished (its access-log line is written after that)
    while (proxy.lines.length === logged) await new Promise((r) => setTimeout(r, 5))
    const third = await execute(proxy.url, { command: "node", args: ["-e", "1"] })
    expect(third.status).toBe(200)
    expect(exitOf(await allEvents(third)).code).toBe(0)
  })

  it("without auth_token, loopback clients are served", async () => {
    const res = await execute(proxy.url, { command: "node", args: ["-e", "1"], stream: false })
    expect(res.status).toBe(200)
  })
})

/**
 * A streamed run of flood.mjs writing `bytes` (more than the socket buffers hold) whose client reads
 * up to the start event (`started`: its pid), then never again.
 */
const stalledFlood = (port: number, bytes: number) => {
  const body = JSON.stringify({ command: "node", args: [fixture("flood.mjs"), String(bytes)] })
  const sock = connect(port, "127.0.0.1")
  sock.write(`POST /cli/execute HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
  const started = new Promise<number>((resolve) => {
    let head = ""
    const onData = (c: Buffer) => {
      head += c.toString("latin1")
      const m = /"type":"start","pid":(\d+)/.exec(head)
      if (m !== null) {
        sock.off("data", onData)
        sock.pause()
        resolve(Number(m[1]))
      }
    }
    sock.on("data", onData)
  })
  return { sock, started }
}

const externalIpv4 = Object.values(networkInterfaces()).flat().find((i) => i?.family === "IPv4" && !i.internal)?.address

describe("POST /cli/execute without auth_token", () => {
  it("threat: DNS rebinding — a loopback client naming another host (a rebound page's Host) gets 403, before anything runs", async () => {
    const proxy = await startProxy({ cli: { enabled: true, allowed_commands: [NODE] } })
    try {
      const dir = mkdtempSync(join(tmpdir(), "gatehouse-cli-"))
      const marker = join(dir, "ran")
      const body = { command: "node", args: ["-e", `require("fs").writeFileSync(${JSON.stringify(marker)}, "")`], stream: false }
      for (const host of [`attacker.example:${proxy.port}`, "attacker.example", `127.0.0.1.attacker.example:${proxy.port}`]) {
        const r = await post(proxy.port, body, { host, origin: `http://${host}` })
        expect(r.status, host).toBe(403)
        expect((JSON.parse(r.body) as { detail: string }).detail, host).toContain("loopback host")
      }
      expect(existsSync(marker)).toBe(false)
      for (const host of [`localhost:${proxy.port}`, `127.0.0.1:${proxy.port}`, "127.0.0.2", `[::1]:${proxy.port}`]) {
        expect((await post(proxy.port, { command: "node", args: ["-e", "1"], stream: false }, { host })).status, host).toBe(200)
      }
      rmSync(dir, { recursive: true, force: true })
    } finally {
      await proxy.stop()
    }
  })

  it.skipIf(externalIpv4 === undefined)("threat: remote code execution — refuses non-loopback clients with 403", async () => {
    const proxy = await startProxy({ server: { host: "0.0.0.0" }, cli: { enabled: true, allowed_commands: [NODE] } })
    try {
      const remote = await execute(`http://${externalIpv4}:${proxy.port}`, { command: "node", args: ["-e", "1"] })
      expect(remote.status).toBe(403)
      expect(((await remote.json()) as { detail: string }).detail).toContain("loopback")
      const local = await execute(proxy.url, { command: "node", args: ["-e", "1"], stream: false })
      expect(local.status).toBe(200)
    } finally {
      await proxy.stop()
    }
  })
})

describe("POST /cli/execute backpressure", () => {
  it("a client that stops reading stalls the process on its pipe instead of buffering its output", async () => {
    const proxy = await startProxy({ cli: { enabled: true, max_output_bytes: "200MB", allowed_commands: [NODE] } })
    const { sock, started } = stalledFlood(proxy.port, 32 * 1024 * 1024)
    try {
      const pid = await started
      // Without backpressure the proxy would pull all 32 MiB (more than the kernel socket buffers hold)
      // into memory within this wait and the process would have exited; with it, it is blocked writing.
      await new Promise((r) => setTimeout(r, 1000))
      expect(isRunning(pid)).toBe(true)
      sock.destroy()
      expect(await waitGone(pid)).toBe(true)
    } finally {
      sock.destroy()
      await proxy.stop()
    }
  })
})

describe("POST /cli/execute: a client that stops reading (threat: slot exhaustion by stalled readers)", () => {
  it("is cut after the write timeout (logged write_timeout): its process is killed and its slot freed for others", async () => {
    const proxy = await startProxy({
      server: { timeouts: { read: "1s", write: "1s" } },
      cli: { enabled: true, max_concurrent: 1, process_timeout: "60s", max_output_bytes: "200MB", allowed_commands: [NODE] }
    })
    const { sock, started } = stalledFlood(proxy.port, 64 * 1024 * 1024)
    try {
      const pid = await started
      const entry = await logged(proxy, (e) => (e.cli as { pid?: number } | undefined)?.pid === pid)
      expect(entry.outcome).toBe("write_timeout")
      expect(entry.status).toBe(200)
      expect(entry.cli).toMatchObject({ killed: "interrupted" })
      expect(await waitGone(pid)).toBe(true)
      expect(sample(await scrape(proxy.metricsPort), "gatehouse_cli_processes_running")).toBe(0)
      // the one slot is free again while the stalled client is still connected
      const next = await execute(proxy.url, { command: "node", args: ["-e", "1"], stream: false })
      expect(next.status).toBe(200)
      await next.body?.cancel()
    } finally {
      sock.destroy()
      await proxy.stop()
    }
  })
})

describe("POST /cli/execute stream: false with a large max_output_bytes", () => {
  let proxy: RunningProxy
  beforeAll(async () => {
    proxy = await startProxy({ cli: { enabled: true, max_output_bytes: "200MB", allowed_commands: [NODE] } })
  })
  afterAll(() => proxy.stop())

  it("answers output whose JSON is longer than V8's longest string (90 MiB of control bytes → 540 MiB of \\u0001), not 500", async () => {
    const n = 90 * 1024 * 1024
    const text = JSON.stringify({ command: "node", args: ["-e", `process.stdout.write(Buffer.alloc(${n}, 1))`], stream: false })
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: proxy.port, path: "/cli/execute", method: "POST", agent: false, headers: { "content-type": "application/json" } }, resolve)
      req.on("error", reject)
      req.end(text)
    })
    expect(res.statusCode).toBe(200)
    expect(res.headers["content-type"]).toBe("application/json")
    expect(res.headers["transfer-encoding"]).toBe("chunked")
    // Read as bytes (the test cannot hold it as one string either): the stdout value must be n escapes.
    const pattern = Buffer.from("\\u0001".repeat(64 * 1024))
    const prefix = /^\{"pid":\d+,"stdout":"/
    let headLength = -1
    let tail = Buffer.alloc(0)
    let total = 0
    let mismatches = 0
    for await (const bytes of res as AsyncIterable<Buffer>) {
      let from = 0
      if (headLength < 0) {
        const m = prefix.exec(bytes.subarray(0, 64).toString("latin1"))
        if (m === null) throw new Error(`unexpected start: ${bytes.subarray(0, 64).toString("latin1")}`)
        headLength = m[0].length
        from = headLength
      }
      // the bytes of the stdout value in this chunk, compared with the escapes where they fall
      const end = Math.min(bytes.length, headLength + 6 * n - total)
      for (let i = from; i < end; i += pattern.length - 6) {
        const j = Math.min(end, i + pattern.length - 6)
        const phase = (total + i - headLength) % 6
        if (!bytes.subarray(i, j).equals(pattern.subarray(phase, phase + j - i))) mismatches++
      }
      if (end < bytes.length) tail = Buffer.concat([tail, bytes.subarray(Math.max(end, from))])
      total += bytes.length
    }
    expect(mismatches).toBe(0)
    const rest = JSON.parse(`{"stdout":"${tail.toString()}`) as Record<string, unknown>
    expect(rest).toMatchObject({ stdout: "", stderr: "", code: 0, signal: null, timed_out: false, killed: null })
    expect(total).toBe(headLength + 6 * n + tail.length)
  }, 120_000) // 90 MiB through a pipe and 540 MiB back: slow on a busy machine, not a timing assertion

  it("a document sent in pieces is the same JSON: characters across piece boundaries stay whole, base64 joins", async () => {
    // 3 MiB of 1-4 byte characters on stdout (pieces end on character boundaries), bytes that are not UTF-8 on stderr
    const script = `const t = "aé€😀".repeat(300000); process.stdout.write(t); const b = Buffer.alloc(200001); for (let i = 0; i < b.length; i++) b[i] = (i * 7) & 255; process.stderr.write(b)`
    const res = await execute(proxy.url, { command: "node", args: ["-e", script], stream: false })
    expect(res.status).toBe(200)
    expect(res.headers.get("transfer-encoding")).toBe("chunked")
    const body = await res.json() as Record<string, unknown>
    expect(body.stdout).toBe("aé€😀".repeat(300000))
    expect(body.stdout_encoding).toBeUndefined()
    expect(body.stderr_encoding).toBe("base64")
    const stderr = Buffer.from(body.stderr as string, "base64")
    expect(stderr.length).toBe(200001)
    expect(stderr.every((b, i) => b === ((i * 7) & 255))).toBe(true)
    expect(body).toMatchObject({ code: 0, signal: null, timed_out: false, killed: null })
  })
})

describe("POST /cli/execute: a program that exits while a process it started holds its stdout", () => {
  it("the exit event has the program's code and duration, timed_out false; what it left is killed at process_timeout (killed: timeout)", async () => {
    const proxy = await startProxy({ cli: { enabled: true, process_timeout: "2s", allowed_commands: [NODE] } })
    try {
      // the background child inherits the stdout pipe and outlives the program
      const script = `const c = require("child_process").spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "inherit" }); c.unref(); console.log(JSON.stringify({ child: c.pid }))`
      const events = await allEvents(await execute(proxy.url, { command: "node", args: ["-e", script] }))
      const { child } = JSON.parse(outputOf(events, "stdout").toString()) as { child: number }
      const exit = exitOf(events)
      expect(exit).toMatchObject({ type: "exit", code: 0, signal: null, timed_out: false, killed: "timeout" })
      // the program's own life, not the 2 s its background child held the output open
      expect(exit.duration_ms).toBeLessThan(2000)
      expect(await waitGone(child)).toBe(true)
    } finally {
      await proxy.stop()
    }
  })
})

describe("POST /cli/execute switched off, and shutdown", () => {
  it("answers 404 when cli.enabled is false (the default)", async () => {
    const proxy = await startProxy({ routing: { default_backend: "" } })
    try {
      const res = await execute(proxy.url, { command: "node" })
      expect(res.status).toBe(404)
    } finally {
      await proxy.stop()
    }
  })

  it("proxy shutdown kills running processes at the end of the grace period", async () => {
    const proxy = await startProxy({ server: { timeouts: { shutdown_grace: "100ms" } }, cli: { enabled: true, allowed_commands: [NODE] } })
    const res = await execute(proxy.url, { command: "node", args: [fixture("sleeper.mjs"), "--child"] })
    const events = eventReader(res)
    await events.next()
    const ready = JSON.parse((await events.next())!.data!) as { pid: number; child: number }
    await proxy.stop()
    expect(await waitGone(ready.pid)).toBe(true)
    expect(await waitGone(ready.child)).toBe(true)
  })
})
