/**
 * Phase: destination (forward proxy only, right after route). The SSRF guard resolves the target
 * once and the request is sent to the checked address; Host (and so TLS SNI and certificate checks)
 * keeps the name the client asked for. Reverse-proxy backends come from config and skip this.
 */
import * as Effect from "effect/Effect"
import type { Forbidden, UpstreamError } from "../../domain/errors.ts"
import type { DestinationGuard } from "../../services/DestinationGuard.ts"
import type { Routed } from "./route.ts"
import type { RequestHead } from "./validate.ts"
import { mapNow } from "../decidedNow.ts"

export const pinDestination = (
  guard: DestinationGuard["Service"],
  head: RequestHead,
  routed: Routed
): Effect.Effect<Routed, Forbidden | UpstreamError> => {
  const t = head.target
  if (routed.kind !== "forward" || t.form !== "absolute") return Effect.succeed(routed)
  return mapNow(guard.resolve(t.hostname, t.port), (ip) => ({
    ...routed,
    backend: { ...routed.backend, origin: `${t.scheme}://${ip.includes(":") ? `[${ip}]` : ip}:${t.port}` }
  }))
}
