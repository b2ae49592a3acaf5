/** Composes the app layer from the command line and environment and launches it. */
import "./v8Flags.ts"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { parseCliArgs, USAGE } from "./domain/cliArgs.ts"
import { AppLayer } from "./layers/App.ts"
import { Config, loadConfig } from "./services/Config.ts"
import { checkStartup } from "./services/startupChecks.ts"

const parsed = parseCliArgs(process.argv.slice(2))

const program = Effect.gen(function*() {
  if (!parsed.ok) {
    yield* Console.error(`gatehouse: ${parsed.error}`)
    return yield* Effect.fail(2)
  }
  const { args } = parsed
  if (args.help) return yield* Console.log(USAGE)
  const config = yield* loadConfig(args, process.env, process.cwd())
  // the same checks for --check-config and for start-up: OK means the configuration starts
  yield* checkStartup(config, process.cwd())
  if (args.checkConfig) {
    return yield* Console.log(
      `gatehouse: configuration OK (${config.sources.join(" + ") || "embedded defaults"}; listen ${config.server.host}:${config.server.port})`
    )
  }
  return yield* Layer.launch(AppLayer.pipe(Layer.provide(Config.layerLoaded(config))))
}).pipe(
  Effect.catchTag("ConfigError", (e) => Console.error(`gatehouse: ${e.message}`).pipe(Effect.andThen(Effect.fail(1))))
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
    const code = Cause.findErrorOption(exit.cause)
    if (code._tag === "Some" && typeof code.value === "number") return onExit(code.value)
    console.error(Cause.pretty(exit.cause))
    return onExit(1)
  }
})
