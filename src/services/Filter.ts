/**
 * Filter: the request/response filters (domain filter, IP ACL, content inspection, and any plugin
 * registered in filters/builtins.ts), compiled once from the rules in force and swapped atomically
 * when config/filters.yaml is reloaded (SIGHUP). Hooks:
 *   admit / connection  at accept: the IP ACL verdict, judged once per connection (again after a reload)
 *   request             before routing (forward target, Host header, CONNECT authority)
 *   responseGuard       a ResponseSink wrapper for the response head and the streamed body
 * A reload that fails (missing, unreadable or invalid file) is logged and the rules in force stay.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { FilterRules } from "../domain/config/security.ts"
import type { Blocked, ConfigError } from "../domain/errors.ts"
import { normaliseHost } from "../domain/hostName.ts"
import { Config } from "./Config.ts"
import { BUILTIN_FILTERS } from "./filters/builtins.ts"
import type { ActiveFilter, FilterPlugin, FilterRequest } from "./filters/FilterPlugin.ts"
import { loadFilterRules } from "./filters/filterRulesFile.ts"
import { makeResponseGuard, type ResponseGuard } from "./filters/responseGuard.ts"

export type { FilterRequest } from "./filters/FilterPlugin.ts"
export type { ResponseGuard } from "./filters/responseGuard.ts"

/** The compiled filters for one version of the rules. */
export interface FilterSnapshot {
  /** 1 at start-up, +1 per successful reload. */
  readonly generation: number
  readonly rules: FilterRules
  readonly source: string | undefined
  readonly active: ReadonlyArray<string>
  readonly connection: ReadonlyArray<NonNullable<ActiveFilter["connection"]>>
  readonly request: ReadonlyArray<NonNullable<ActiveFilter["request"]>>
  readonly responseHead: ReadonlyArray<NonNullable<ActiveFilter["responseHead"]>>
  readonly responseBody: ReadonlyArray<NonNullable<ActiveFilter["responseBody"]>>
  /** Stored responses (cache entries) these rules passed: a hit on one is not judged again (responseGuard.ts). */
  readonly passedStored: WeakSet<object>
}

export const compileFilters = (
  plugins: ReadonlyArray<FilterPlugin>,
  rules: FilterRules,
  generation: number,
  source: string | undefined
): FilterSnapshot => {
  const active = plugins.map((p) => p.compile(rules)).filter((f): f is ActiveFilter => f !== undefined)
  const hooks = <K extends "connection" | "request" | "responseHead" | "responseBody">(k: K) =>
    active.map((f) => f[k]).filter((h): h is NonNullable<ActiveFilter[K]> => h !== undefined)
  return {
    generation,
    rules,
    source,
    active: active.map((f) => f.name),
    connection: hooks("connection"),
    request: hooks("request"),
    responseHead: hooks("responseHead"),
    responseBody: hooks("responseBody"),
    passedStored: new WeakSet()
  }
}

/** Build the FilterRequest for a host as received ("Example.COM.", "[::1]", "xn--..."): normalised once. */
export const filterRequest = (
  kind: FilterRequest["kind"],
  rawHost: string,
  port: number | undefined,
  clientIp: string,
  method: string
): FilterRequest => ({ kind, rawHost, host: normaliseHost(rawHost), port, clientIp, method })

interface Verdict {
  readonly generation: number
  readonly blocked: Blocked | undefined
}

export class Filter extends Context.Service<Filter, {
  /** At connection accept (synchronous, before any byte is read): judge the client address once. */
  readonly admit: (connection: object, clientIp: string) => void
  /** The connection's ACL verdict (from accept; judged again when the rules were reloaded since). */
  connection(connection: object, clientIp: string): Effect.Effect<void, Blocked>
  /** The same verdict, now (the request path's decision runs it without a fiber when it can). */
  readonly connectionVerdict: (connection: object, clientIp: string) => Blocked | undefined
  /** The request filters, before routing and before a CONNECT target is dialled. */
  request(req: FilterRequest): Effect.Effect<void, Blocked>
  /** The same verdict, now. */
  readonly requestVerdict: (req: FilterRequest) => Blocked | undefined
  /** The response filters for this request as a ResponseSink wrapper; undefined when none is active. */
  readonly responseGuard: (req: FilterRequest) => ResponseGuard | undefined
  /** Re-read security.filters_file and swap the rules; on failure the rules in force stay. */
  readonly reload: Effect.Effect<FilterSnapshot, ConfigError>
  /** The current snapshot, then every reloaded one. */
  readonly changes: Stream.Stream<FilterSnapshot>
}>()("gatehouse/Filter") {
  /** The built-in filters; reloads on SIGHUP. `cwd` resolves a relative `security.filters_file`. */
  static readonly make = (plugins: ReadonlyArray<FilterPlugin> = BUILTIN_FILTERS, cwd: string = process.cwd()) =>
    Layer.effect(
      Filter,
      Effect.gen(function*() {
        const { security } = yield* Config
        const first = yield* loadFilterRules(security, cwd)
        const ref = yield* SubscriptionRef.make(compileFilters(plugins, first.rules, 1, first.source))
        const verdicts = new WeakMap<object, Verdict>()

        const judge = (connection: object, clientIp: string): Blocked | undefined => {
          const snap = SubscriptionRef.getUnsafe(ref)
          if (snap.connection.length === 0) return undefined
          const known = verdicts.get(connection)
          if (known !== undefined && known.generation === snap.generation) return known.blocked
          let blocked: Blocked | undefined
          for (const check of snap.connection) if ((blocked = check(clientIp)) !== undefined) break
          verdicts.set(connection, { generation: snap.generation, blocked })
          return blocked
        }

        const reload = Effect.gen(function*() {
          const previous = SubscriptionRef.getUnsafe(ref)
          // a file in force that has vanished is rejected like an invalid one (filterRulesFile.ts)
          const loaded = yield* loadFilterRules(security, cwd, previous.source !== undefined)
          const next = compileFilters(plugins, loaded.rules, previous.generation + 1, loaded.source)
          yield* SubscriptionRef.set(ref, next)
          yield* Effect.logInfo("filters reloaded").pipe(
            Effect.annotateLogs({ generation: next.generation, source: loaded.source ?? "inline", active: next.active.join(",") })
          )
          return next
        }).pipe(
          Effect.tapError((e) => Effect.logError("filters reload rejected; the rules in force stay").pipe(Effect.annotateLogs({ error: e.message })))
        )

        // SIGHUP → reload; installed with the layer, removed by its finalizer.
        const context = yield* Effect.context<never>()
        const runReload = () => {
          Effect.runForkWith(context)(Effect.ignore(reload))
        }
        yield* Effect.acquireRelease(
          Effect.sync(() => process.on("SIGHUP", runReload)),
          () => Effect.sync(() => process.removeListener("SIGHUP", runReload))
        )
        yield* Effect.logDebug("filters loaded").pipe(
          Effect.annotateLogs({ source: first.source ?? "inline", active: SubscriptionRef.getUnsafe(ref).active.join(",") })
        )

        const requestVerdict = (req: FilterRequest): Blocked | undefined => {
          for (const check of SubscriptionRef.getUnsafe(ref).request) {
            const blocked = check(req)
            if (blocked !== undefined) return blocked
          }
          return undefined
        }

        return Filter.of({
          admit: (connection, clientIp) => {
            judge(connection, clientIp)
          },
          connection: (connection, clientIp) =>
            Effect.suspend(() => {
              const blocked = judge(connection, clientIp)
              return blocked === undefined ? Effect.void : Effect.fail(blocked)
            }),
          connectionVerdict: judge,
          request: (req) =>
            Effect.suspend(() => {
              const blocked = requestVerdict(req)
              return blocked === undefined ? Effect.void : Effect.fail(blocked)
            }),
          requestVerdict,
          responseGuard: (req) => {
            const snap = SubscriptionRef.getUnsafe(ref)
            return snap.responseHead.length === 0 && snap.responseBody.length === 0
              ? undefined
              : makeResponseGuard(req, snap.responseHead, snap.responseBody, snap.passedStored)
          },
          reload,
          changes: SubscriptionRef.changes(ref)
        })
      })
    )

  static readonly layer = Filter.make()
}
