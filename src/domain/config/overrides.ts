/** Pure steps of config assembly: deep merge of files, then env, then flags (in that precedence). */
import type { CliArgs } from "../cliArgs.ts"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [k: string]: Json }
type Obj = { [k: string]: unknown }

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v)

/** Objects merge key by key; arrays and scalars from `over` replace; YAML nulls mean "not set". */
export const deepMerge = (base: unknown, over: unknown): unknown => {
  if (over === null || over === undefined) return base
  if (!isObj(base) || !isObj(over)) return over
  const out: Obj = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v)
  return out
}

/** Drop null-valued keys (an empty YAML section `server:` means "use the defaults"). */
export const dropNulls = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(dropNulls)
  if (!isObj(v)) return v
  const out: Obj = {}
  for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = dropNulls(x)
  return out
}

const setPath = (target: Obj, path: ReadonlyArray<string>, value: unknown): Obj => {
  const [head, ...rest] = path
  if (head === undefined) return target
  const child = isObj(target[head]) ? (target[head] as Obj) : {}
  return { ...target, [head]: rest.length === 0 ? value : setPath(child, rest, value) }
}

const numeric = (s: string): string | number => (/^\d+$/.test(s) ? Number(s) : s)
/** "0.5" → 0.5; anything else stays a string so the schema names the bad value. */
const decimal = (s: string): string | number => (s.trim() !== "" && !Number.isNaN(Number(s)) ? Number(s) : s)
const bool = (s: string): string | boolean =>
  /^(1|true|yes|on)$/i.test(s) ? true : /^(0|false|no|off)$/i.test(s) ? false : s

/** Environment variable → config key path, with its value coercion. Later issues add rows. */
export const ENV_OVERRIDES: ReadonlyArray<readonly [string, ReadonlyArray<string>, (s: string) => unknown]> = [
  ["PROXY_HOST", ["server", "host"], (s) => s],
  ["PROXY_PORT", ["server", "port"], numeric],
  ["LOG_LEVEL", ["logging", "level"], (s) => s.toLowerCase()],
  ["LOG_FORMAT", ["logging", "format"], (s) => s.toLowerCase()],
  ["DEFAULT_BACKEND", ["routing", "default_backend"], (s) => s],
  ["LOG_ACCESS", ["logging", "access_log"], bool],
  ["FILTERS_FILE", ["security", "filters_file"], (s) => s],
  ["CLI_ENABLED", ["cli", "enabled"], bool],
  ["CLI_AUTH_TOKEN", ["cli", "auth_token"], (s) => s],
  ["CLI_MAX_CONCURRENT", ["cli", "max_concurrent"], numeric],
  ["COMPRESSION_ENABLED", ["compression", "enabled"], bool],
  ["CACHE_ENABLED", ["cache", "enabled"], bool],
  ["CACHE_BACKEND", ["cache", "backend"], (s) => s.toLowerCase()],
  ["CACHE_MAX_MEMORY", ["cache", "max_memory"], numeric],
  ["CACHE_REDIS_URL", ["cache", "redis_url"], (s) => s],
  ["METRICS_ENABLED", ["metrics", "enabled"], bool],
  ["METRICS_HOST", ["metrics", "host"], (s) => s],
  ["METRICS_PORT", ["metrics", "port"], numeric],
  ["TRACING_ENABLED", ["tracing", "enabled"], bool],
  ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ["tracing", "otlp_endpoint"], (s) => s],
  ["TRACING_SAMPLE_RATIO", ["tracing", "sample_ratio"], decimal],
  ["RATE_LIMIT_ENABLED", ["security", "rate_limiting", "enabled"], bool],
  ["RATE_LIMIT_RPS", ["security", "rate_limiting", "requests_per_second"], decimal],
  ["RATE_LIMIT_BURST", ["security", "rate_limiting", "burst"], numeric],
  ["RATE_LIMIT_BACKEND", ["security", "rate_limiting", "backend"], (s) => s.toLowerCase()],
  ["RATE_LIMIT_REDIS_URL", ["security", "rate_limiting", "redis_url"], (s) => s],
  ["ADMIN_TOKEN", ["security", "admin_token"], (s) => s]
]

export const applyEnv = (input: unknown, env: Readonly<Record<string, string | undefined>>): unknown => {
  let out = (isObj(input) ? input : {}) as Obj
  for (const [name, path, coerce] of ENV_OVERRIDES) {
    const v = env[name]
    if (v !== undefined && v !== "") out = setPath(out, path, coerce(v))
  }
  return out
}

export const applyFlags = (input: unknown, args: CliArgs): unknown => {
  let out = (isObj(input) ? input : {}) as Obj
  if (args.host !== undefined) out = setPath(out, ["server", "host"], args.host)
  if (args.port !== undefined) out = setPath(out, ["server", "port"], numeric(args.port))
  return out
}

/** Which source set a key, for error messages: flag, env var, or file. */
export const sourceOf = (path: ReadonlyArray<string>, env: Readonly<Record<string, string | undefined>>, args: CliArgs, files: ReadonlyArray<string>): string => {
  const key = path.join(".")
  if (key === "server.host" && args.host !== undefined) return "flag --host"
  if (key === "server.port" && args.port !== undefined) return "flag --port"
  for (const [name, p] of ENV_OVERRIDES) if (p.join(".") === key && env[name]) return `env ${name}`
  return files.length === 0 ? "defaults" : files.join(" + ")
}

export const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let cur: unknown = input
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined
    cur = (cur as Record<PropertyKey, unknown>)[k]
  }
  return cur
}
