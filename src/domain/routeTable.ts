/**
 * The reverse-proxy route table, compiled once from config: first rule whose host (exact or
 * "*." wildcard, case-insensitive, port-insensitive unless the rule names one) and path prefix
 * match wins; else the default backend; else no route.
 */
import type { RouteRule } from "./config/routing.ts"

export interface Backend {
  /** scheme://host:port, the connection-pool key. */
  readonly origin: string
  /** Path prefix prepended to the request path ("" for none). */
  readonly basePath: string
  /** Authority sent as Host upstream. */
  readonly host: string
  /**
   * `host` is the authority of `origin` as the connection pool writes it by itself (a configured
   * backend): the Host field is then left to the pool, one header less to validate per request.
   * False where they may differ (a forward-proxy target pinned to its checked address).
   */
  readonly poolWritesHost: boolean
  /** Printable name for logs: the configured URL. */
  readonly name: string
  /** The route rule that chose this backend (per-route headers / TLS options); absent for the default. */
  readonly rule?: RouteRule
}

interface CompiledRule {
  readonly exact: string | undefined
  /** ".example.com" for "*.example.com": subdomains only. */
  readonly suffix: string | undefined
  readonly withPort: boolean
  readonly pathPrefix: string
  readonly backend: Backend
}

export interface RouteTable {
  readonly rules: ReadonlyArray<CompiledRule>
  readonly fallback: Backend | undefined
}

export const parseBackend = (url: string): Backend => {
  const u = new URL(url)
  const basePath = u.pathname === "/" ? "" : u.pathname.replace(/\/$/, "")
  return { origin: u.origin, basePath, host: u.host, poolWritesHost: true, name: url }
}

export const compileRoutes = (rules: ReadonlyArray<RouteRule>, defaultBackend: string): RouteTable => ({
  rules: rules.map((r): CompiledRule => {
    const host = r.match.host?.toLowerCase()
    const wildcard = host?.startsWith("*.") === true
    return {
      exact: host !== undefined && !wildcard ? host : undefined,
      suffix: wildcard ? host!.slice(1) : undefined,
      withPort: host?.includes(":") === true,
      pathPrefix: r.match.path_prefix ?? "",
      backend: { ...parseBackend(r.forward.target), rule: r }
    }
  }),
  fallback: defaultBackend === "" ? undefined : parseBackend(defaultBackend)
})

const stripPort = (host: string): string => {
  if (host.startsWith("[")) {
    const end = host.indexOf("]")
    return end < 0 ? host : host.slice(0, end + 1)
  }
  const colon = host.indexOf(":")
  return colon < 0 ? host : host.slice(0, colon)
}

const normaliseHost = (host: string): string => {
  const h = host.toLowerCase()
  return h.endsWith(".") ? h.slice(0, -1) : h
}

/** Match a request's Host header value and path against the table. */
export const matchRoute = (table: RouteTable, hostHeader: string, path: string): Backend | undefined => {
  const full = hostHeader.toLowerCase()
  const bare = normaliseHost(stripPort(full))
  for (const r of table.rules) {
    const h = r.withPort ? full : bare
    if (r.exact !== undefined && h !== r.exact) continue
    if (r.suffix !== undefined && !(h.endsWith(r.suffix) && h.length > r.suffix.length)) continue
    if (r.pathPrefix !== "" && !path.startsWith(r.pathPrefix)) continue
    return r.backend
  }
  return table.fallback
}
