/**
 * CliRunner (issue 3): starts allow-listed programs for POST /cli/execute and hands back their
 * output as an Effect Stream. No shell, ever: the program is spawned by its resolved path with argv
 * as given. Each process leads its own process group (detached), lives in the caller's Scope and is
 * killed with its whole group when that scope closes (client gone, request done, shutdown):
 * SIGTERM, then SIGKILL after `cli.kill_grace`. `process_timeout` and `max_output_bytes` kill it the
 * same way. Node reaps the leader; the group kill leaves no orphans behind. A scope that closes while
 * the process still runs makes it `killed: "interrupted"`, and its exit (with the signal that ended
 * it) is known once the scope is closed.
 *
 * `effect/process` ChildProcessSpawner does process groups too, but reports a death by signal only as
 * an error message; the exit event needs the signal name, so node:child_process is wrapped here.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { realpathSync, statSync } from "node:fs"
import { resolve as resolvePath } from "node:path"
import { type AllowedProgram, compileAllowlist, resolveCommand } from "../domain/cliAllowlist.ts"
import type { ExitInfo, KilledReason, OutputStream } from "../domain/cliEvents.ts"
import type { CliSection } from "../domain/config/cli.ts"
import { CommandNotAllowed, ProcessSpawnFailed, TooManyProcesses } from "../domain/errors.ts"
import { Config } from "./Config.ts"
import { resolveCliWorkingDir } from "./startupChecks.ts"

export interface OutputChunk {
  readonly stream: OutputStream
  readonly data: Uint8Array
}

export interface Execution {
  readonly pid: number
  /**
   * stdout and stderr as the process writes them (pulled: a slow consumer leaves the data in the
   * pipe and the process blocks on write). Ends when both pipes close, or at `max_output_bytes`
   * (the chunk crossing it is cut, then the process is killed). Consume it once.
   */
  readonly output: Stream.Stream<OutputChunk>
  /**
   * Waits for the process to exit (run it after `output` ended). After the scope closed it answers at
   * once: the process was killed and waited for (code and signal null if it outlived even SIGKILL).
   * Its `duration_ms` ends at the program's exit, not when its output ended (see ExitInfo).
   */
  readonly exit: Effect.Effect<ExitInfo>
}

export interface CliStats {
  readonly running: number
  readonly started: number
  readonly finished: number
  readonly rejected: number
  readonly timed_out: number
  readonly output_capped: number
  readonly spawn_failed: number
}

/** How long to wait for a process after SIGKILL before giving up on it (it is not coming back). */
const AFTER_KILL_MS = 2000
/** Retry-After for 429: processes are short-lived; ask again soon. */
const RETRY_AFTER_SECONDS = 1

interface ExitSignal {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** Clock time of the exit (or of giving up on the process): its duration ends here, not when read. */
  readonly at: number
}

/** kill(2) on the whole process group; ESRCH (already gone) is fine. */
const signalGroup = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pid, signal)
  } catch {
    // the group is gone already
  }
}

/** PATH and LANG from the proxy's own environment, then `cli.env`; nothing else (no secrets). */
export const childEnvironment = (parent: NodeJS.ProcessEnv, extra: Readonly<Record<string, string>>): Record<string, string> => {
  const env: Record<string, string> = {}
  if (parent.PATH !== undefined) env.PATH = parent.PATH
  if (parent.LANG !== undefined) env.LANG = parent.LANG
  return { ...env, ...extra }
}

export class CliRunner extends Context.Service<CliRunner, {
  readonly settings: CliSection
  /** The allow-listed program a request names (absolute path or bare name of an entry). */
  resolve(command: string): Effect.Effect<AllowedProgram, CommandNotAllowed>
  /** Starts the program in the caller's scope; closing the scope kills its process group. */
  start(program: AllowedProgram, args: ReadonlyArray<string>, stdin: Uint8Array | undefined): Effect.Effect<Execution, TooManyProcesses | ProcessSpawnFailed, Scope.Scope>
  /** Counters for the metrics endpoint. */
  readonly stats: Effect.Effect<CliStats>
}>()("gatehouse/CliRunner") {
  static readonly layer = Layer.effect(
    CliRunner,
    Effect.gen(function*() {
      const { cli } = yield* Config
      const programs: Array<AllowedProgram> = []
      let cwd = resolvePath(cli.working_dir)
      if (cli.enabled) {
        for (const configured of cli.allowed_commands) {
          const real = yield* Effect.sync(() => {
            try {
              const r = realpathSync(configured)
              return statSync(r).isFile() ? r : undefined
            } catch {
              return undefined
            }
          })
          if (real === undefined) yield* Effect.logWarning("cli.allowed_commands: not found, skipped").pipe(Effect.annotateLogs({ command: configured }))
          else programs.push({ configured, real })
        }
        cwd = yield* resolveCliWorkingDir(cli, process.cwd())
        if (cli.auth_token === "") {
          yield* Effect.logWarning("cli.enabled without cli.auth_token: /cli/execute answers loopback clients only")
        }
      }
      const allowlist = compileAllowlist(programs)
      const env = childEnvironment(process.env, cli.env)
      const live = new Set<ChildProcessWithoutNullStreams>()
      const counters = { running: 0, started: 0, finished: 0, rejected: 0, timed_out: 0, output_capped: 0, spawn_failed: 0 }

      // Safety net for shutdown: request scopes kill their processes; anything still alive dies here.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const child of live) if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL")
          live.clear()
        })
      )

      const spawnChild = (program: AllowedProgram, args: ReadonlyArray<string>, exited: Deferred.Deferred<ExitSignal>, clock: Clock.Clock) =>
        Effect.callback<ChildProcessWithoutNullStreams, ProcessSpawnFailed>((resume) => {
          let child: ChildProcessWithoutNullStreams
          try {
            child = spawn(program.real, args, {
              argv0: program.configured,
              cwd,
              env,
              detached: true,
              shell: false,
              stdio: "pipe",
              windowsHide: true
            })
          } catch (cause) {
            // spawn throws instead of emitting 'error' for some errno values (E2BIG: argv + env over ARG_MAX)
            counters.spawn_failed++
            resume(Effect.fail(new ProcessSpawnFailed({ command: program.configured, cause })))
            return
          }
          child.on("error", (cause) => {
            if (child.pid === undefined) {
              counters.spawn_failed++
              resume(Effect.fail(new ProcessSpawnFailed({ command: program.configured, cause })))
            }
          })
          child.once("exit", (code, signal) => {
            counters.finished++
            Deferred.doneUnsafe(exited, Effect.succeed({ code, signal, at: clock.currentTimeMillisUnsafe() }))
          })
          child.once("spawn", () => resume(Effect.succeed(child)))
        })

      /**
       * SIGTERM the group, SIGKILL after the grace period, then SIGKILL whatever is left in the group.
       * A process that outlives SIGKILL (uninterruptible sleep) is given up on: its exit is unknown.
       */
      const terminate = (pid: number, exited: Deferred.Deferred<ExitSignal>, clock: Clock.Clock) =>
        Effect.gen(function*() {
          if (!(yield* Deferred.isDone(exited))) {
            signalGroup(pid, "SIGTERM")
            const done = yield* Deferred.await(exited).pipe(Effect.timeoutOption(cli.kill_grace))
            if (done._tag === "None") {
              signalGroup(pid, "SIGKILL")
              const gone = yield* Deferred.await(exited).pipe(Effect.timeoutOption(AFTER_KILL_MS))
              if (gone._tag === "None") yield* Deferred.succeed(exited, { code: null, signal: null, at: clock.currentTimeMillisUnsafe() })
            }
          }
          signalGroup(pid, "SIGKILL")
        })

      const slot = Effect.acquireRelease(
        Effect.suspend(() => {
          if (counters.running >= cli.max_concurrent) {
            counters.rejected++
            return Effect.fail(new TooManyProcesses({ limit: cli.max_concurrent, retryAfterSeconds: RETRY_AFTER_SECONDS }))
          }
          counters.running++
          return Effect.void
        }),
        () => Effect.sync(() => { counters.running-- })
      )

      const readPipe = (stream: OutputStream, readable: NodeJS.ReadableStream) =>
        NodeStream.fromReadable<Uint8Array, unknown>({ evaluate: () => readable, onError: (e) => e }).pipe(
          Stream.orDie,
          Stream.map((data): OutputChunk => ({ stream, data }))
        )

      const start = Effect.fnUntraced(function*(program: AllowedProgram, args: ReadonlyArray<string>, stdin: Uint8Array | undefined) {
        yield* slot
        const clock = yield* Clock.Clock
        const startedAt = clock.currentTimeMillisUnsafe()
        const exited = Deferred.makeUnsafe<ExitSignal>()
        let killed: KilledReason | null = null
        /** process_timeout ended the program itself (not only what it left running after its exit). */
        let timedOut = false
        const child = yield* Effect.acquireRelease(spawnChild(program, args, exited, clock), (c) =>
          Effect.gen(function*() {
            // Still running when the scope closes: the request ended first (client gone, shutdown).
            if (killed === null && !(yield* Deferred.isDone(exited))) killed = "interrupted"
            yield* terminate(c.pid!, exited, clock)
          }).pipe(Effect.ensuring(Effect.sync(() => live.delete(c)))))
        const pid = child.pid!
        live.add(child)
        counters.started++
        child.stdin.on("error", () => {}) // EPIPE when the program does not read its stdin
        if (stdin === undefined || stdin.length === 0) child.stdin.end()
        else child.stdin.end(stdin)

        const capHit = Deferred.makeUnsafe<void>()
        // Watchdog: the first of process_timeout and the output cap kills the group; lives as long as the scope.
        // It also runs after the program exited while processes it left in its group hold its output open.
        yield* Effect.raceFirst(
          Effect.as(Effect.sleep(cli.process_timeout), "timeout" as const),
          Effect.as(Deferred.await(capHit), "max_output_bytes" as const)
        ).pipe(
          Effect.flatMap((reason) => {
            killed = reason
            if (reason === "timeout") {
              counters.timed_out++
              timedOut = !Deferred.isDoneUnsafe(exited)
            } else counters.output_capped++
            return terminate(pid, exited, clock)
          }),
          Effect.forkScoped
        )

        const limit = cli.max_output_bytes
        let total = 0
        const output = Stream.merge(readPipe("stdout", child.stdout), readPipe("stderr", child.stderr)).pipe(
          Stream.map((c): OutputChunk => {
            const room = limit - total
            total += c.data.length
            if (c.data.length <= room) return c
            Deferred.doneUnsafe(capHit, Effect.void)
            return { stream: c.stream, data: c.data.subarray(0, Math.max(0, room)) }
          }),
          Stream.takeUntil(() => total > limit)
        )

        const exit = Effect.map(Deferred.await(exited), ({ at, code, signal }) =>
          ({ code, signal, duration_ms: at - startedAt, timed_out: timedOut, killed }) satisfies ExitInfo)
        return { pid, output, exit } satisfies Execution
      })

      return CliRunner.of({
        settings: cli,
        resolve: (command) => {
          const r = resolveCommand(allowlist, command)
          return r._tag === "Allowed" ? Effect.succeed(r.program) : Effect.fail(new CommandNotAllowed({ command, reason: r.reason }))
        },
        start,
        stats: Effect.sync(() => ({ ...counters }))
      })
    })
  )
}
