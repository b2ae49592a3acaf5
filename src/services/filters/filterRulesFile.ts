/**
 * The filter rules in force: `security.filtering / access_control / inspection` from the main
 * configuration, with `security.filters_file` merged over them key by key (objects merge, lists and
 * scalars from the file replace). The file has the same shape, either at its top level or under
 * `security:`. The default path (config/filters.yaml) is used when it exists; a path set explicitly
 * must exist, and a file in force that vanishes is a rejected reload: a wrong path or a deploy that
 * removes and rewrites the file must not silently drop every rule (nginx refuses a missing include).
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { existsSync } from "node:fs"
import { isAbsolute, join } from "node:path"
import { FilterRules, type SecuritySection } from "../../domain/config/security.ts"
import { deepMerge, dropNulls } from "../../domain/config/overrides.ts"
import { ConfigError } from "../../domain/errors.ts"
import { readYaml, toConfigError } from "../Config.ts"

export interface LoadedRules {
  readonly rules: FilterRules
  /** The file merged over the inline rules, or undefined when none was used. */
  readonly source: string | undefined
}

const inlineRules = (security: SecuritySection): FilterRules => ({
  filtering: security.filtering,
  access_control: security.access_control,
  inspection: security.inspection
})

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/** The schema's default `security.filters_file` (domain/config/security.ts): optional, used when it exists. */
const DEFAULT_FILE = "config/filters.yaml"

/**
 * `inUse`: a file is in force now (a reload). A file that does not exist is then refused, as is an
 * explicitly set path that does not exist at start-up; only the default path may be absent.
 */
export const loadFilterRules = (security: SecuritySection, cwd: string, inUse = false): Effect.Effect<LoadedRules, ConfigError> =>
  Effect.gen(function*() {
    const inline = inlineRules(security)
    const file = security.filters_file
    if (file === "") return { rules: inline, source: undefined }
    const path = isAbsolute(file) ? file : join(cwd, file)
    if (!(yield* Effect.sync(() => existsSync(path)))) {
      if (file === DEFAULT_FILE && !inUse) return { rules: inline, source: undefined }
      return yield* new ConfigError({
        key: "security.filters_file",
        value: JSON.stringify(file),
        expected: `an existing file${path === file ? "" : ` (${path})`}, or "" for none`,
        source: inUse ? file : "filters"
      })
    }
    const raw = dropNulls(yield* readYaml(path))
    const body = isObject(raw) && "security" in raw ? raw.security ?? {} : raw
    if (!isObject(body)) {
      return yield* new ConfigError({ key: "", value: JSON.stringify(body), expected: "a mapping with filtering / access_control / inspection", source: file })
    }
    const rules = yield* Schema.decodeUnknownEffect(FilterRules)(deepMerge(inline, body), { onExcessProperty: "error" }).pipe(
      Effect.mapError((e) => toConfigError(e, body, () => file))
    )
    return { rules, source: file }
  })
