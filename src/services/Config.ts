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

/** The --env overlay of a main config file: beside it, the profile before the extension (proxy.yaml → proxy.dev.yaml). */
export const overlayFile = (main: string, profile: string): string =>
  join(dirname(main), `${basename(main, extname(main))}.${profile}${extname(main)}`)

export interface LoadedConfig extends ProxyConfig {
  /** Files merged, in order (empty: embedded defaults). */
  readonly sources: ReadonlyArray<string>
  /**
   * Where a key's value came from ("server.host" → "env PROXY_HOST", "flag --host", or the files), so
   * that a check made after decoding (startupChecks.ts) names the source as a decode error does.
   */
  readonly sourceOf: (key: string) => string
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

const isMapping = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v)

/** A config file: empty (= no keys), or a YAML mapping at the top level; a scalar or a list is refused. */
export const readConfigFile = (file: string, shownAs: string): Effect.Effect<unknown, ConfigError> =>
  Effect.flatMap(readYaml(file), (body) =>
    isMapping(body)
      ? Effect.succeed(body)
      : Effect.fail(new ConfigError({
        key: "",
        value: JSON.stringify(body).slice(0, 80),
        expected: "a mapping (key: value) at the top level",
        source: shownAs
      })))

/** Keys whose value is a secret: named in an error, never echoed. */
const isSecretKey = (path: ReadonlyArray<string>) => /(^|_)token$/.test(path[path.length - 1] ?? "")

/** A value as the user wrote it: JSON, but NaN and ±Infinity (YAML `.nan`, `.inf`) as such, not as JSON's `null`. */
const shown = (value: unknown): string =>
  typeof value === "number" && !Number.isFinite(value) ? String(value) : JSON.stringify(value)

/** Turn a Schema failure into a ConfigError naming the key path, the value found and what was expected. */
export const toConfigError = (error: Schema.SchemaError, input: unknown, describe: (path: ReadonlyArray<string>) => string) => {
  const first = formatIssue(error.issue).issues[0]
  const path = (first?.path ?? []).map((p) => String(typeof p === "object" && p !== null && "key" in p ? p.key : p))
  const value = valueAt(input, path)
  const message = first?.message ?? String(error)
  return new ConfigError({
    key: path.join("."),
    value: value === undefined ? "" : isSecretKey(path) ? `(hidden, ${String(value).length} characters)` : shown(value),
    expected: message.replace(/^Expected /, "").replace(/^expected /, ""),
    source: describe(path)
  })
}

/**
 * defaults < files (main, then the --env/PROXY_ENV overlay) < env < flags; decoded once.
 * The overlay NAME of a main file DIR/BASE.EXT is DIR/BASE.NAME.EXT, beside it (like nginx includes):
 * `--config /etc/gatehouse/edge.yaml --env prod` reads /etc/gatehouse/edge.prod.yaml; without --config,
 * config/proxy.NAME.yaml. A named overlay that does not exist stops start-up.
 */
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
      merged = deepMerge(merged, dropNulls(yield* readConfigFile(path, main)))
      files.push(main)
    }
    const profile = args.env ?? env.PROXY_ENV
    if (profile !== undefined && profile !== "") {
      const overlay = overlayFile(main ?? DEFAULT_CONFIG_FILE, profile)
      if (!existsSync(resolve(cwd, overlay))) {
        return yield* new ConfigError({ key: "", value: profile, expected: `an override file ${overlay}`, source: args.env !== undefined ? "--env" : "env PROXY_ENV" })
      }
      merged = deepMerge(merged, dropNulls(yield* readConfigFile(resolve(cwd, overlay), overlay)))
      files.push(overlay)
    }
    const input = applyFlags(applyEnv(merged, env), args)
    const describe = (path: ReadonlyArray<string>) => sourceOf(path, env, args, files)
    const decoded = yield* Schema.decodeUnknownEffect(ProxyConfig)(input, { onExcessProperty: "error" }).pipe(
      Effect.mapError((e) => toConfigError(e, input, describe))
    )
    return { ...decoded, sources: files, sourceOf: (key) => describe(key.split(".")) } satisfies LoadedConfig
  })

/** Decode a config given inline (tests, embedded use). */
export const decodeConfig = (input: ProxyConfigInput | unknown) =>
  Schema.decodeUnknownEffect(ProxyConfig)(input, { onExcessProperty: "error" }).pipe(
    Effect.map((c): LoadedConfig => ({ ...c, sources: [], sourceOf: () => "inline config" })),
    Effect.mapError((e) => toConfigError(e, input, () => "inline config"))
  )

/** The decoded configuration, read once at start-up; nothing re-reads it per request. */
export class Config extends Context.Service<Config, LoadedConfig>()("gatehouse/Config") {
  static readonly layerFromArgs = (args: CliArgs, env: Readonly<Record<string, string | undefined>>, cwd: string) =>
    Layer.effect(Config, loadConfig(args, env, cwd))

  static readonly layerOf = (input: ProxyConfigInput | unknown) => Layer.effect(Config, decodeConfig(input))

  /** A configuration main.ts already loaded and checked. */
  static readonly layerLoaded = (config: LoadedConfig) => Layer.succeed(Config, config)
}
