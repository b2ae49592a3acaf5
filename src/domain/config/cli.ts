import * as Schema from "effect/Schema"
import { BearerToken } from "./bearerToken.ts"
import { GraceMs, IntBetween, SizeBytes, TimeoutMs } from "./units.ts"
import { withDefault } from "./withDefault.ts"

/** An allow-listed program: an absolute path, no "..", no NUL. Resolved with realpath at start-up. */
export const AllowedCommand = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^(?:\/(?!\.\.?(?:\/|$))[^/\0]+)+$/, {
    message: `expected an absolute path to a program such as "/usr/bin/python3" (no "." or ".." segments)`
  }))
)

const EnvName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "expected an environment variable name" }))
)

/**
 * The `cli:` section: POST /cli/execute runs allow-listed programs (issue 3). Off unless enabled.
 * `CLI_ENABLED`, `CLI_AUTH_TOKEN` and `CLI_MAX_CONCURRENT` override the file.
 */
export const CliSection = Schema.Struct({
  enabled: withDefault(Schema.Boolean, false),
  /** Bearer token; "" = no token, then only loopback clients may call the endpoint. */
  auth_token: withDefault(BearerToken, ""),
  max_concurrent: withDefault(IntBetween(1, 10_000, "a number of processes"), 10),
  /** 1ms-24d; 0 is refused (it would kill every command at once). */
  process_timeout: withDefault(TimeoutMs, "60s"),
  /** SIGTERM → SIGKILL after this long (timeout, output cap, client gone, shutdown); 0 = SIGKILL at once. */
  kill_grace: withDefault(GraceMs, "2s"),
  max_output_bytes: withDefault(SizeBytes, "10MB"),
  max_stdin_bytes: withDefault(SizeBytes, "1MB"),
  working_dir: withDefault(Schema.String.pipe(Schema.check(Schema.isMinLength(1))), "."),
  env: withDefault(Schema.Record(EnvName, Schema.String), {}),
  allowed_commands: withDefault(Schema.Array(AllowedCommand), ["/usr/bin/python3", "/usr/bin/node"])
})
export type CliSection = typeof CliSection.Type
