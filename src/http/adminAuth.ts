/**
 * Access to the control endpoints under /admin/*: with `security.admin_token` set, an
 * `Authorization: Bearer <token>` compared in constant time (else 401 + WWW-Authenticate: Bearer);
 * without a token, loopback clients only (else 403). Shared by every /admin/* endpoint.
 */
import * as Effect from "effect/Effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { Forbidden, Unauthorized } from "../domain/errors.ts"
import { ipRanges } from "../domain/ipRanges.ts"

export type AdminAuth = (authorization: string | undefined, clientIp: string) => Effect.Effect<void, Unauthorized | Forbidden>

const digest = (s: string) => createHash("sha256").update(s).digest()

export const isAdminPath = (path: string): boolean => path.startsWith("/admin/") || path === "/admin"

export const makeAdminAuth = (token: string): AdminAuth => {
  if (token === "") {
    const loopback = ipRanges(["127.0.0.0/8", "::1/128"])
    return (_authorization, clientIp) =>
      loopback.has(clientIp)
        ? Effect.void
        : Effect.fail(new Forbidden({ reason: "admin endpoints accept loopback clients only without an admin token", rule: "security.admin_token" }))
  }
  const expected = digest(token)
  const unauthorized = Effect.fail(new Unauthorized({ realm: "gatehouse-admin" }))
  return (authorization) => {
    if (authorization === undefined) return unauthorized
    const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)
    return m !== null && timingSafeEqual(digest(m[1]!), expected) ? Effect.void : unauthorized
  }
}
