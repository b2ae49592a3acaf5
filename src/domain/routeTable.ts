/**
 * The reverse-proxy route table, compiled once from config: first rule whose host (exact or
 * "*." wildcard, case-insensitive, port-insensitive unless the rule names one) and path prefix
 * match wins; else the default backend; else no route. Rule and request hosts are normalised the
 * same way: lowercase, one trailing dot removed from the name ("example.com." is the same FQDN),
 * the port apart; a port-less Host stands for the default port of the client's scheme, so it
 * matches a rule naming 80 or 443.
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
  /** The port the rule names, 0 for any. */
  readonly port: number
  /** The rule names 80 or 443: a Host without a port (the scheme's default) matches too. */
  readonly defaultPort: boolean
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
    const host = r.match.host === undefined ? undefined : splitHost(r.match.host)
    const wildcard = host?.name.startsWith("*.") === true
    return {
      exact: host !== undefined && !wildcard ? host.name : undefined,
      suffix: wildcard ? host!.name.slice(1) : undefined,
      port: host?.port ?? 0,
      defaultPort: host?.port === 80 || host?.port === 443,
      pathPrefix: r.match.path_prefix ?? "",
      backend: { ...parseBackend(r.forward.target), rule: r }
    }
  }),
  fallback: defaultBackend === "" ? undefined : parseBackend(defaultBackend)
})

/** Index of the ":" before a host's port ("[::1]:80" → 5), or -1. */
const portColon = (host: string): number => {
  const colon = host.lastIndexOf(":")
  return colon < 0 || (host.charCodeAt(0) === 91 /* [ */ && colon < host.indexOf("]")) ? -1 : colon
}

/** Digits after the port colon as a number; 0 for none or not a number. */
const portOf = (host: string, colon: number): number => {
  if (colon < 0) return 0
  let port = 0
  for (let i = colon + 1; i < host.length; i++) {
    const d = host.charCodeAt(i) - 48
    if (d < 0 || d > 9) return 0
    port = port * 10 + d
  }
  return port
}

/** Lowercase name without its trailing dot, and port (0 for none): at compile time for rules. */
const splitHost = (host: string): { readonly name: string; readonly port: number } => {
  const lower = host.toLowerCase()
  const colon = portColon(lower)
  return { name: withoutTrailingDot(colon < 0 ? lower : lower.slice(0, colon)), port: portOf(lower, colon) }
}

const withoutTrailingDot = (name: string): string => (name.endsWith(".") ? name.slice(0, -1) : name)

/** Match a request's Host header value and path against the table. */
export const matchRoute = (table: RouteTable, hostHeader: string, path: string): Backend | undefined => {
  // as splitHost, without the object: this runs per request
  const lower = hostHeader.toLowerCase()
  const colon = portColon(lower)
  const name = withoutTrailingDot(colon < 0 ? lower : lower.slice(0, colon))
  const port = portOf(lower, colon)
  for (const r of table.rules) {
    if (r.port !== 0 && (port === 0 ? !r.defaultPort : port !== r.port)) continue
    if (r.exact !== undefined && name !== r.exact) continue
    if (r.suffix !== undefined && !(name.endsWith(r.suffix) && name.length > r.suffix.length)) continue
    if (r.pathPrefix !== "" && !path.startsWith(r.pathPrefix)) continue
    return r.backend
  }
  return table.fallback
}
