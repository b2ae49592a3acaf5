/**
 * Response hardening (security.headers, per route `headers:`): a ResponseSink wrapper that adds
 * X-Content-Type-Options, X-Frame-Options, Content-Security-Policy, and Strict-Transport-Security when
 * the client connection is TLS (RFC 6797 §7.2: never over plain HTTP); keeps the upstream's own value
 * unless `override`; removes listed upstream fields (Server, X-Powered-By). Compiled once per policy.
 */
import type { ResponseHeaders, RouteResponseHeaders } from "../domain/config/responseHeaders.ts"
import type { HeaderMap } from "../domain/hopHeaders.ts"
import { DelegatingSink, type ResponseSink } from "../services/Upstream.ts"
import type { SinkWrapper } from "./composeSinks.ts"

interface Compiled {
  readonly plain: ReadonlyArray<readonly [string, string]>
  readonly tls: ReadonlyArray<readonly [string, string]>
  readonly remove: ReadonlyArray<string>
  readonly override: boolean
}

const compile = (h: ResponseHeaders): Compiled | undefined => {
  if (!h.enabled) return undefined
  const plain: Array<readonly [string, string]> = []
  if (h.content_type_options !== "") plain.push(["x-content-type-options", h.content_type_options])
  if (h.frame_options !== "") plain.push(["x-frame-options", h.frame_options])
  if (h.content_security_policy !== "") plain.push(["content-security-policy", h.content_security_policy])
  const tls = h.strict_transport_security === "" ? plain : [...plain, ["strict-transport-security", h.strict_transport_security] as const]
  const remove = h.remove.map((n) => n.toLowerCase())
  return plain.length === 0 && tls.length === 0 && remove.length === 0 ? undefined : { plain, tls, remove, override: h.override }
}

/** The hardening in front of one response's sink. */
class HardeningSink extends DelegatingSink {
  readonly policy: Compiled
  readonly add: ReadonlyArray<readonly [string, string]>
  constructor(inner: ResponseSink, policy: Compiled, add: ReadonlyArray<readonly [string, string]>) {
    super(inner)
    this.policy = policy
    this.add = add
  }
  override head(status: number, statusText: string | undefined, headers: HeaderMap): void {
    const { remove, override } = this.policy
    for (let i = 0; i < remove.length; i++) if (headers[remove[i]!] !== undefined) delete headers[remove[i]!] // (a delete is a runtime call even when absent)
    const add = this.add
    for (let i = 0; i < add.length; i++) {
      const field = add[i]!
      if (override || headers[field[0]] === undefined) headers[field[0]] = field[1]
    }
    this.inner.head(status, statusText, headers)
  }
}

const wrapper = (c: Compiled, tls: boolean): SinkWrapper => {
  const add = tls ? c.tls : c.plain
  return (sink: ResponseSink): ResponseSink => new HardeningSink(sink, c, add)
}

/** A route's (or the global) hardening of a response: the sink wrapper, or undefined when there is nothing to do. */
export type SecurityHeaders = (route: { readonly headers?: RouteResponseHeaders } | undefined, tls: boolean) => SinkWrapper | undefined

/** Built once per layer (the pipeline's, the listener's for Upgrade): the global policy and each route's merged policy (cached by rule). */
export const makeSecurityHeaders = (global: ResponseHeaders): SecurityHeaders => {
  const base = compile(global)
  const byRoute = new WeakMap<object, Compiled | undefined>()
  const plainBase = base === undefined ? undefined : wrapper(base, false)
  const tlsBase = base === undefined ? undefined : wrapper(base, true)
  return (route: { readonly headers?: RouteResponseHeaders } | undefined, tls: boolean): SinkWrapper | undefined => {
    if (route?.headers === undefined) return tls ? tlsBase : plainBase
    let c = byRoute.get(route)
    if (c === undefined && !byRoute.has(route)) {
      c = compile({ ...global, ...route.headers })
      byRoute.set(route, c)
    }
    return c === undefined ? undefined : wrapper(c, tls)
  }
}
