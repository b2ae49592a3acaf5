import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import { existsSync, readFileSync } from "node:fs"
import { basename, dirname, extname, join, resolve } from "node:path"
import { parse as parseYaml } from "yaml"
import type { CliArgs } from "../domain/cliArgs.ts"
import { ProxyConfig, type ProxyConfigInput } from "../domain/config/ProxyConfig.ts"
import { applyEnv, applyFlags, deepMerge, dropNulls, sourceOf, valueAt } from "../domain/config/overrides.ts"
import { ConfigError } from "../domain/errors.ts"

export const DEFAULT_CONFIG_FILE = "config/proxy.yaml"

export interface LoadedConfig extends ProxyConfig {
  /** Files merged, in order (empty: embedded defaults). */
  readonly sources: ReadonlyArray<string>
}

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

export const readYaml = (file: string): Effect.Effect<unknown, ConfigError> =>
  Effect.try({
    try: () => {
      const text = readFileSync(file, "utf8")
      return parseYaml(text) ?? {}
    },
    catch: (e) =>
      new ConfigError({
        key: "",
        value: "",
        expected: `a readable YAML file (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`,
        source: file
      })
  })

/** Turn a Schema failure into a ConfigError naming the key path, the value found and what was expected. */
export const toConfigError = (error: Schema.SchemaError, input: unknown, describe: (path: ReadonlyArray<string>) => string) => {
  const first = formatIssue(error.issue).issues[0]
  const path = (first?.path ?? []).map((p) => String(typeof p === "object" && p !== null && "key" in p ? p.key : p))
  const value = valueAt(input, path)
  const message = first?.message ?? String(error)
  return new ConfigError({
    key: path.join("."),
    value: value === undefined ? "" : JSON.stringify(value),
    expected: message.replace(/^Expected /, "").replace(/^expected /, ""),
    source: describe(path)
  })
}

/** defaults < files (main, then the --env/PROXY_ENV overlay) < env < flags; decoded once. */
export const loadConfig = (args: CliArgs, env: Readonly<Record<string, string | undefined>>, cwd: string) =>
  Effect.gen(function*() {
    const files: Array<string> = []
    const main = args.config ?? (existsSync(join(cwd, DEFAULT_CONFIG_FILE)) ? DEFAULT_CONFIG_FILE : undefined)
    let merged: unknown = {}
    if (main !== undefined) {
      const path = resolve(cwd, main)
      if (args.config !== undefined && !existsSync(path)) {
        return yield* new ConfigError({ key: "", value: "", expected: "an existing file", source: `--config ${main}` })
      }
      merged = deepMerge(merged, dropNulls(yield* readYaml(path)))
      files.push(main)
      const profile = args.env ?? env.PROXY_ENV
      if (profile !== undefined && profile !== "") {
        const overlay = join(dirname(main), `${basename(main, extname(main))}.${profile}${extname(main)}`)
        if (!existsSync(resolve(cwd, overlay))) {
          return yield* new ConfigError({ key: "", value: profile, expected: `an override file ${overlay}`, source: "PROXY_ENV/--env" })
        }
        merged = deepMerge(merged, dropNulls(yield* readYaml(resolve(cwd, overlay))))
        files.push(overlay)
      }
    }
    const input = applyFlags(applyEnv(merged, env), args)
    const decoded = yield* Schema.decodeUnknownEffect(ProxyConfig)(input, { onExcessProperty: "error" }).pipe(
      Effect.mapError((e) => toConfigError(e, input, (p) => sourceOf(p, env, args, files)))
    )
    return { ...decoded, sources: files } satisfies LoadedConfig
  })

/** Decode a config given inline (tests, embedded use). */
export const decodeConfig = (input: ProxyConfigInput | unknown) =>
  Schema.decodeUnknownEffect(ProxyConfig)(input, { onExcessProperty: "error" }).pipe(
    Effect.map((c): LoadedConfig => ({ ...c, sources: [] })),
    Effect.mapError((e) => toConfigError(e, input, () => "inline config"))
  )

/** The decoded configuration, read once at start-up; nothing re-reads it per request. */
export class Config extends Context.Service<Config, LoadedConfig>()("gatehouse/Config") {
  static readonly layerFromArgs = (args: CliArgs, env: Readonly<Record<string, string | undefined>>, cwd: string) =>
    Layer.effect(Config, loadConfig(args, env, cwd))

  static readonly layerOf = (input: ProxyConfigInput | unknown) => Layer.effect(Config, decodeConfig(input))
}
