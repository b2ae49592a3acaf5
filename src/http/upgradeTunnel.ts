/**
 * HTTP/1.1 Upgrade (RFC 9110 §7.8), e.g. WebSocket: the request is validated, checked (IP ACL, domain
 * filter, rate limit, proxy auth, SSRF guard: the same order as RequestPipeline) and routed like any
 * other, sent upstream with its Upgrade intact; on 101 the two sockets are joined as Effect Streams
 * (socketBridge.ts), otherwise the client gets 502. Everything else about Upgrade is hop-by-hop and
 * stripped on normal requests.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import type { RequestError } from "../domain/errors.ts"
import { upstreamRequestHeaders } from "../domain/hopHeaders.ts"
import { newRequestContext } from "../domain/RequestContext.ts"
import { type AccessLog, accessEntry } from "../services/AccessLog.ts"
import type { LoadedConfig } from "../services/Config.ts"
import type { DestinationGuard } from "../services/DestinationGuard.ts"
import type { Filter } from "../services/Filter.ts"
import type { ProxyAuth } from "../services/ProxyAuth.ts"
import type { RateLimiter } from "../services/RateLimiter.ts"
import type { Router } from "../services/Router.ts"
import type { Upstream } from "../services/Upstream.ts"
import { settleTunnel } from "./tunnelExit.ts"
import type { MetricsHooks } from "../services/Metrics.ts"
import type { Reclaimer } from "../services/Reclaimer.ts"
import { pinDestination } from "./phases/destination.ts"
import { filterPhase } from "./phases/filter.ts"
import { route, type SelfCheck } from "./phases/route.ts"
import { validate } from "./phases/validate.ts"
import { bridgeSockets } from "./socketBridge.ts"

export interface UpgradeDeps {
  readonly config: LoadedConfig
  readonly router: Router["Service"]
  readonly upstream: Upstream["Service"]
  readonly accessLog: AccessLog["Service"]
  readonly requestId: (incoming: string | undefined) => string
  readonly isSelf: SelfCheck
  readonly clientIp: (sock: Duplex) => string
  readonly via: string
  readonly filter: Filter["Service"]
  readonly proxyAuth: ProxyAuth["Service"]
  readonly rateLimiter: RateLimiter["Service"]
  readonly destinations: DestinationGuard["Service"]
  readonly metrics: MetricsHooks
  readonly reclaimer: Reclaimer["Service"]
}

const head101 = (headers: Record<string, string | Array<string> | undefined>, via: string): string => {
  let out = "HTTP/1.1 101 Switching Protocols\r\n"
  for (const name in headers) {
    const v = headers[name]
    if (v === undefined) continue
    for (const one of Array.isArray(v) ? v : [v]) out += `${name}: ${one}\r\n`
  }
  return `${out}via: ${via}\r\n\r\n`
}

export const upgradeTunnel = (deps: UpgradeDeps, req: IncomingMessage, client: Duplex, head: Buffer): Effect.Effect<void> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeNanos
    const rid = req.headers["x-request-id"]
    const ctx = newRequestContext(deps.requestId(typeof rid === "string" ? rid : undefined), start, deps.clientIp(client), req.method ?? "GET", req.url ?? "")
    let switched = false
    let idled = false
    const open = Effect.gen(function*() {
      // Until the switch, a client that ends its side has left: the socket allows half-open, so
      // only 'end' says so. Closing it fires 'close', which interrupts this fiber (Listener.ts).
      const leave = () => client.destroy()
      yield* Effect.acquireRelease(Effect.sync(() => client.once("end", leave)), () => Effect.sync(() => client.off("end", leave)))
      yield* deps.filter.connection(client, ctx.clientIp)
      const h = yield* validate(req, deps.config.server)
      // domain filter (an upgraded stream is not a response body: no content inspection after 101)
      yield* filterPhase(deps.filter, req, h, ctx, deps.isSelf)
      const xff = req.headers["x-forwarded-for"]
      yield* deps.rateLimiter.admit(ctx.clientIp, Array.isArray(xff) ? xff.join(", ") : xff)
      const t = h.target
      if (deps.proxyAuth.enabled && t.form === "absolute" && !deps.isSelf(t.hostname, t.port)) {
        yield* deps.proxyAuth.check(req.headers["proxy-authorization"])
      }
      const routed = yield* Effect.flatMap(
        route(h, req.headers.host ?? "", deps.router, deps.isSelf),
        (r) => pinDestination(deps.destinations, h, r)
      )
      ctx.kind = routed.kind
      ctx.upstream = routed.backend.origin
      const protocol = String(req.headers.upgrade ?? "")
      const headers = upstreamRequestHeaders(req.rawHeaders, routed.backend.host, {
        clientIp: ctx.clientIp,
        proto: (req.socket as { encrypted?: boolean }).encrypted === true ? "https" : "http",
        host: routed.requestedHost,
        via: deps.via,
        requestId: ctx.id,
        maxForwards: undefined,
        contentLength: undefined
      })
      // interruptible: a client that leaves while the origin has not answered aborts the upgrade
      const up = yield* Effect.acquireRelease(
        deps.upstream.upgrade({ origin: routed.backend.origin, path: routed.path, method: req.method ?? "GET", headers, protocol }),
        (u) => Effect.sync(() => u.socket.destroy()),
        { interruptible: true }
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
      client.off("end", leave) // from here the bridge relays a half-close
      client.write(head101(up.headers, deps.via))
      switched = true
      ctx.status = 101
      if (head.length > 0) up.socket.write(head)
      yield* bridgeSockets(client, up.socket, ctx.upstream, deps.config.server.timeouts.idle, deps.reclaimer.relayed, () => { idled = true })
    })
    const report = (exit: Exit.Exit<void, RequestError>) =>
      Effect.gen(function*() {
        const error = settleTunnel(exit, ctx, client, switched, idled)
        if (error !== undefined) deps.metrics.refused(error)
        const end = yield* Clock.currentTimeNanos
        ctx.bytesIn = (client as { bytesRead?: number }).bytesRead ?? 0
        ctx.bytesOut = (client as { bytesWritten?: number }).bytesWritten ?? 0
        deps.metrics.request(ctx, end - start)
        yield* deps.accessLog.write(accessEntry(ctx, end - start, "upgrade"))
      })
    yield* Effect.scoped(open).pipe(Effect.onExit(report))
  }).pipe(Effect.catchCause(() => Effect.void))
