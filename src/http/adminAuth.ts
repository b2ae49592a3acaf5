/**
 * Access to the control endpoints under /admin/*: with `security.admin_token` set, an
 * `Authorization: Bearer <token>` compared in constant time (else 401 + WWW-Authenticate: Bearer);
 * without a token, loopback clients only, and only requests that name a loopback host (else 403):
 * a page whose DNS name was rebound to 127.0.0.1 connects from loopback but names its own host
 * (loopbackHost.ts). Shared by every /admin/* endpoint.
 */
import * as Effect from "effect/Effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { Forbidden, Unauthorized } from "../domain/errors.ts"
import { ipRanges } from "../domain/ipRanges.ts"
import { LOOPBACK_HOST_REQUIRED, namesLoopbackHost } from "../domain/loopbackHost.ts"

/** `target` and `host` are the request-target as received and its Host field (judged only without a token). */
export type AdminAuth = (
  authorization: string | undefined,
  clientIp: string,
  target: string,
  host: string | undefined
) => Effect.Effect<void, Unauthorized | Forbidden>

const digest = (s: string) => createHash("sha256").update(s).digest()

export const isAdminPath = (path: string): boolean => path.startsWith("/admin/") || path === "/admin"

export const makeAdminAuth = (token: string): AdminAuth => {
  if (token === "") {
    const loopback = ipRanges(["127.0.0.0/8", "::1/128"])
    const remote = Effect.fail(new Forbidden({ reason: "admin endpoints accept loopback clients only without an admin token", rule: "security.admin_token" }))
    const rebound = Effect.fail(new Forbidden({ reason: `admin endpoints without an admin token: ${LOOPBACK_HOST_REQUIRED}`, rule: "security.admin_token" }))
    return (_authorization, clientIp, target, host) =>
      !loopback.has(clientIp) ? remote
        : !namesLoopbackHost(target, host) ? rebound
        : Effect.void
  }
  const expected = digest(token)
  const unauthorized = Effect.fail(new Unauthorized({ realm: "gatehouse-admin" }))
  return (authorization) => {
    if (authorization === undefined) return unauthorized
    const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)
    return m !== null && timingSafeEqual(digest(m[1]!), expected) ? Effect.void : unauthorized
  }
}
