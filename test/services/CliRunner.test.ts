/** CliRunner against real child processes; TestClock drives process_timeout and kill_grace. */
import { assert, describe, expect, it, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { existsSync } from "node:fs"
import { applyEnv } from "../../src/domain/config/overrides.ts"
import { CliRunner, type Execution } from "../../src/services/CliRunner.ts"
import { Config, decodeConfig } from "../../src/services/Config.ts"
import { fixture, isRunning, NODE } from "../fixtures/cli.ts"

/** Gone and reaped by Node (no /proc entry, not even a zombie): its 'exit' event has been emitted. */
const reaped = async (pid: number): Promise<void> => {
  for (let waited = 0; waited < 5000 && existsSync(`/proc/${pid}`); waited += 10) await new Promise((r) => setTimeout(r, 10))
}

const runnerLayer = CliRunner.layer.pipe(
  Layer.provide(Config.layerOf({
    logging: { level: "none" },
    cli: { enabled: true, process_timeout: "60s", kill_grace: "5s", max_concurrent: 1, allowed_commands: [NODE, "/nonexistent/tool"] }
  }))
)

layer(runnerLayer)("CliRunner", (it) => {
  it.effect("process_timeout: SIGTERM first, SIGKILL after kill_grace when the program ignores it", () =>
    Effect.gen(function*() {
      const runner = yield* CliRunner
      const program = yield* runner.resolve("node")
      const ready = yield* Deferred.make<void>()
      const termSeen = yield* Deferred.make<void>()
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const exec = yield* runner.start(program, [fixture("sleeper.mjs"), "--ignore-term"], undefined)
        const reader = yield* Stream.runForEach(exec.output, (c) =>
          c.stream === "stdout" ? Deferred.succeed(ready, undefined) : Deferred.succeed(termSeen, undefined)
        ).pipe(Effect.forkChild)
        yield* Deferred.await(ready)
        // a second start while this one runs: max_concurrent is 1
        const second = yield* Effect.exit(Effect.scoped(runner.start(program, ["-e", "1"], undefined)))
        assert.isTrue(Exit.isFailure(second))
        yield* TestClock.adjust("60 seconds")
        yield* Deferred.await(termSeen) // SIGTERM arrived and was ignored
        assert.isTrue(isRunning(exec.pid))
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(reader)
        return yield* exec.exit
      }))
      expect(result).toMatchObject({ code: null, signal: "SIGKILL", timed_out: true, killed: "timeout" })
      const stats = yield* runner.stats
      expect(stats).toMatchObject({ running: 0, timed_out: 1, rejected: 1 })
      expect(stats.started).toBeGreaterThanOrEqual(1)
    }))

  it.effect("a scope closed while the process runs (client gone): SIGTERM; exit has that signal and killed: interrupted", () =>
    Effect.gen(function*() {
      const runner = yield* CliRunner
      const program = yield* runner.resolve("node")
      const started = yield* Deferred.make<Execution>()
      const ready = yield* Deferred.make<void>()
      const request = yield* Effect.scoped(Effect.gen(function*() {
        const exec = yield* runner.start(program, [fixture("sleeper.mjs")], undefined)
        yield* Deferred.succeed(started, exec)
        yield* Stream.runForEach(exec.output, () => Deferred.succeed(ready, undefined))
      })).pipe(Effect.forkChild)
      yield* Deferred.await(ready)
      const exec = yield* Deferred.await(started)
      yield* Fiber.interrupt(request)
      assert.isFalse(isRunning(exec.pid))
      expect(yield* exec.exit).toMatchObject({ code: null, signal: "SIGTERM", timed_out: false, killed: "interrupted" })
    }))

  it.effect("a program that exits while a background child holds its stdout: the exit has its own code and duration, timed_out false", () =>
    Effect.gen(function*() {
      const runner = yield* CliRunner
      const program = yield* runner.resolve("node")
      // the child inherits the stdout pipe and outlives the program
      const script = `require("child_process").spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "inherit" }).unref()`
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const exec = yield* runner.start(program, ["-e", script], undefined)
        const reader = yield* Stream.runDrain(exec.output).pipe(Effect.forkChild)
        yield* Effect.promise(() => reaped(exec.pid)) // the program exited at TestClock time 0
        yield* TestClock.adjust("60 seconds") // process_timeout: the group (the child) is killed, the output ends
        yield* Fiber.join(reader)
        return yield* exec.exit
      }))
      expect(result).toEqual({ code: 0, signal: null, duration_ms: 0, timed_out: false, killed: "timeout" })
    }))

  it.effect("resolves only listed programs that exist (missing entries are skipped at start-up)", () =>
    Effect.gen(function*() {
      const runner = yield* CliRunner
      expect((yield* runner.resolve(NODE)).real).toBeTypeOf("string")
      const missing = yield* Effect.flip(runner.resolve("/nonexistent/tool"))
      expect(missing._tag).toBe("CommandNotAllowed")
    }))
})

describe("cli config", () => {
  it.effect("defaults: off, loopback only, 10 processes, 60s, 10MB output, 1MB stdin", () =>
    Effect.gen(function*() {
      const { cli } = yield* decodeConfig({})
      expect(cli).toMatchObject({ enabled: false, auth_token: "", max_concurrent: 10, process_timeout: 60_000, max_output_bytes: 10 * 1024 * 1024, max_stdin_bytes: 1024 * 1024 })
    }))
  it.effect("a relative allowed command fails start-up naming the key", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(decodeConfig({ cli: { allowed_commands: ["python3"] } }))
      expect(e.key).toBe("cli.allowed_commands.0")
      const dotdot = yield* Effect.flip(decodeConfig({ cli: { allowed_commands: ["/usr/bin/../bin/sh"] } }))
      expect(dotdot.key).toBe("cli.allowed_commands.0")
    }))
  it("CLI_ENABLED, CLI_AUTH_TOKEN and CLI_MAX_CONCURRENT override the file", () => {
    expect(applyEnv({ cli: { enabled: false } }, { CLI_ENABLED: "true", CLI_AUTH_TOKEN: "tok", CLI_MAX_CONCURRENT: "3" })).toEqual({
      cli: { enabled: true, auth_token: "tok", max_concurrent: 3 }
    })
  })
})
