import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import type { LogLevel } from "../domain/config/logging.ts"
import { Config } from "../services/Config.ts"

const LEVELS: Record<LogLevel, "Trace" | "Debug" | "Info" | "Warn" | "Error" | "Fatal" | "None"> = {
  trace: "Trace", debug: "Debug", info: "Info", warn: "Warn", error: "Error", fatal: "Fatal", none: "None"
}

/** Application logs (start-up, drain, errors) in the configured format and level. */
export const LoggingLayer = Layer.unwrap(
  Effect.map(Config, ({ logging }) =>
    Layer.mergeAll(
      Logger.layer([logging.format === "json" ? Logger.consoleJson : Logger.consoleLogFmt]),
      Layer.succeed(References.MinimumLogLevel, LEVELS[logging.level])
    ))
)
