/**
 * Phase: route. Origin-form → the Router (reverse proxy); absolute-form → the URI's own origin
 * (forward proxy), except when it names this listener, which is served like origin-form.
 */
import * as Effect from "effect/Effect"
import { BadRequest, type NoRoute } from "../../domain/errors.ts"
import { BACKSLASH_REASON, CLIMBS_ABOVE_ROOT_REASON, removeDotSegments } from "../../domain/requestTarget.ts"
import type { Backend } from "../../domain/routeTable.ts"
import type { Router } from "../../services/Router.ts"
import type { RequestHead } from "./validate.ts"
import { mapNow } from "../decidedNow.ts"

export interface Routed {
  readonly kind: "forward" | "reverse"
  readonly backend: Backend
  /** Path to send upstream (base path applied). */
  readonly path: string
  /** The host the client asked for, for X-Forwarded-Host / Forwarded. */
  readonly requestedHost: string
}

export type SelfCheck = (hostname: string, port: number) => boolean

export const route = (head: RequestHead, hostHeader: string, router: Router["Service"], isSelf: SelfCheck): Effect.Effect<Routed, NoRoute | BadRequest> => {
  const t = head.target
  if (t.form === "absolute" && !isSelf(t.hostname, t.port)) {
    const origin = `${t.scheme}://${hostPort(t)}`
    return Effect.succeed({
      kind: "forward",
      backend: { origin, basePath: "", host: t.authority, poolWritesHost: false, name: origin },
      path: t.path,
      requestedHost: t.authority
    })
  }
  const host = t.form === "absolute" ? t.authority : hostHeader
  // origin-form paths come without dot-segments (classifyTarget); an absolute-form target naming this
  // listener is served the same way, so its path gets the same treatment before matching and prefixing
  const path = t.form === "absolute" ? removeDotSegments(t.path) : t.form === "origin" ? t.path : "*"
  if (path === undefined || path === null) return Effect.fail(new BadRequest({ reason: path === null ? BACKSLASH_REASON : CLIMBS_ABOVE_ROOT_REASON }))
  return mapNow(router.route(host, path), (backend) => ({
    kind: "reverse" as const,
    backend,
    path: backend.basePath === "" ? path : backend.basePath + path,
    requestedHost: host
  }))
}

const hostPort = (t: { readonly hostname: string; readonly port: number }) =>
  t.hostname.includes(":") ? `[${t.hostname}]:${t.port}` : `${t.hostname}:${t.port}`
