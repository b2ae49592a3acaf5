import * as Schema from "effect/Schema"
import { withDefault } from "./withDefault.ts"

export const LogLevel = Schema.Literals(["trace", "debug", "info", "warn", "error", "fatal", "none"])
export type LogLevel = typeof LogLevel.Type

export const LoggingSection = Schema.Struct({
  level: withDefault(LogLevel, "info"),
  format: withDefault(Schema.Literals(["json", "text"]), "json"),
  access_log: withDefault(Schema.Boolean, true)
})
export type LoggingSection = typeof LoggingSection.Type
