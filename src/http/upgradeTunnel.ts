/**
 * HTTP/1.1 Upgrade (RFC 9110 §7.8), e.g. WebSocket: the request is validated, checked (IP ACL, domain
 * filter, rate limit, proxy auth, SSRF guard: the same order as RequestPipeline) and routed like any
 * other, sent upstream with its Upgrade offer; on 101 the two sockets are joined as Effect Streams
 * (socketBridge.ts). The origin may decline and answer as to any request (401, 200, ...): that answer
 * is relayed, its interim responses before it, and the connection goes back to the HTTP server for the
 * client's next request (upgradeAnswer.ts). An offer Gatehouse does not tunnel (h2c, HTTP/1.0, a request
 * with content: upgradeOffer.ts) goes back to the HTTP server at once, as a plain request without it.
 * Everything else about Upgrade is hop-by-hop and stripped on normal requests.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import type { RequestError } from "../domain/errors.ts"
import type { MetricsHooks } from "../services/Metrics.ts"
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
import type { Reclaimer } from "../services/Reclaimer.ts"
import { composeSinks } from "./composeSinks.ts"
import { handBack, previousResponseDone } from "./connectionHandBack.ts"
import { pinDestination } from "./phases/destination.ts"
import { filterPhase, withVerdict } from "./phases/filter.ts"
import { route, type SelfCheck } from "./phases/route.ts"
import { validate } from "./phases/validate.ts"
import type { SecurityHeaders } from "./securityHeaders.ts"
import { bridgeSockets } from "./socketBridge.ts"
import { bytesRead, bytesWritten, recordTunnelBytes, settleTunnel } from "./tunnelExit.ts"
import { UpgradeAnswer } from "./upgradeAnswer.ts"
import { plainRequestHead, tunnelledProtocols } from "./upgradeOffer.ts"

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
  /** security.headers, compiled once (securityHeaders.ts). */
  readonly securityHeaders: SecurityHeaders
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

/**
 * The Listener counted the connection as a tunnel until it closes (the gauge); handed back to the HTTP
 * server it is none from now on.
 */
const notATunnel = (metrics: MetricsHooks, client: Duplex): void => {
  metrics.tunnels(-1)
  client.once("close", () => metrics.tunnels(1))
}

export const upgradeTunnel = (deps: UpgradeDeps, req: IncomingMessage, client: Duplex, head: Buffer): Effect.Effect<void> =>
  Effect.gen(function*() {
    // what the connection read up to the upgrade request's head (earlier requests, the head itself)
    // is not tunnel payload; the client's early bytes after it are in `head` (read now, before any wait)
    const readFrom = bytesRead(client) - head.length
    yield* previousResponseDone(client)
    const protocol = tunnelledProtocols(req)
    if (protocol === undefined) {
      // served by the HTTP server (and the pipeline's checks) as a plain request without the offer
      if (handBack(client, Buffer.concat([plainRequestHead(req), head]))) notATunnel(deps.metrics, client)
      else client.destroy()
      return
    }
    const start = yield* Clock.currentTimeNanos
    const rid = req.headers["x-request-id"]
    const ctx = newRequestContext(deps.requestId(typeof rid === "string" ? rid : undefined), start, deps.clientIp(client), req.method ?? "GET", req.url ?? "")
    let switched = false
    let idled = false
    let left = false
    let writtenFrom = 0
    let answer: UpgradeAnswer | undefined
    let declined = false
    const open = Effect.gen(function*() {
      // Until the switch, a client that ends its side has left: the socket allows half-open, so
      // only 'end' says so. Closing it fires 'close', which interrupts this fiber (Listener.ts).
      const leave = () => {
        left = true
        client.destroy()
      }
      yield* Effect.acquireRelease(Effect.sync(() => client.once("end", leave)), () => Effect.sync(() => client.off("end", leave)))
      yield* deps.filter.connection(client, ctx.clientIp)
      const h = yield* validate(req, deps.config.server)
      // domain filter; its response guard inspects a declined upgrade's answer (an upgraded stream is
      // not a response body: no content inspection after 101)
      const guard = yield* filterPhase(deps.filter, req, h, ctx, deps.isSelf)
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
      const tls = (req.socket as { encrypted?: boolean }).encrypted === true
      const headers = upstreamRequestHeaders(req.rawHeaders, routed.backend.host, {
        clientIp: ctx.clientIp,
        proto: tls ? "https" : "http",
        host: routed.requestedHost,
        via: deps.via,
        requestId: ctx.id,
        maxForwards: undefined,
        contentLength: undefined
      })
      const relay = answer = new UpgradeAnswer(req, client, deps.via, deps.reclaimer.relayed)
      // a declined upgrade's answer meets the response filters of a forwarded response (in
      // RequestPipeline's order; compression and the cache store are not for it)
      const sink = composeSinks([guard?.wrap, deps.securityHeaders(routed.backend.rule, tls)])(relay.sink)
      const upgrade = {
        origin: routed.backend.origin,
        path: routed.path,
        method: req.method ?? "GET",
        headers,
        protocol,
        interim: relay,
        ...(routed.backend.rule?.tls_insecure_skip_verify === true ? { insecureTls: true } : {})
      }
      // interruptible: a client that leaves while the origin has not answered aborts the upgrade
      const result = yield* Effect.acquireRelease(
        deps.upstream.upgrade(upgrade, sink).pipe(withVerdict(guard)),
        (r) => Effect.sync(() => r.upgraded?.socket.destroy()),
        { interruptible: true }
      )
      const up = result.upgraded
      if (up === undefined) {
        // RFC 9110 §7.8: the origin ignored the offer; its answer went to the client as it came
        declined = true
        ctx.status = result.status
        ctx.bytesOut = result.bytes
        ctx.outcome = "upgrade_declined"
        yield* relay.finished
        return
      }
      relay.release()
      yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
      client.off("end", leave) // from here the bridge relays a half-close
      client.write(head101(up.headers, deps.via))
      // (the count includes writes still queued: from here on it is the tunnel's)
      writtenFrom = bytesWritten(client)
      switched = true
      ctx.status = 101
      if (head.length > 0) up.socket.write(head)
      yield* bridgeSockets(client, up.socket, ctx.upstream, deps.config.server.timeouts.idle, deps.reclaimer.relayed, () => { idled = true })
    })
    const report = (exit: Exit.Exit<void, RequestError>) =>
      Effect.gen(function*() {
        const relay = answer
        const answered = relay !== undefined && relay.started()
        // a declined upgrade's answer cut short (the client left mid-body): the status that went out
        if (answered && !switched && ctx.status === 0) {
          ctx.status = relay.res.statusCode
          ctx.bytesOut = relay.sink.bytes
        }
        const error = settleTunnel(exit, ctx, client, switched || answered, idled, left)
        if (error !== undefined) deps.metrics.refused(error)
        const end = yield* Clock.currentTimeNanos
        // the tunnel's payload each way: not the requests and responses before it, its head or the 101
        if (switched) recordTunnelBytes(ctx, client, readFrom, writtenFrom)
        deps.metrics.request(ctx, end - start)
        yield* deps.accessLog.write(accessEntry(ctx, end - start, "upgrade"))
      })
    yield* Effect.scoped(open).pipe(Effect.onExit(report))
    // declined and answered: the client's next request is the HTTP server's (keep-alive), or it closes
    if (declined && answer?.reuse(head) === true) notATunnel(deps.metrics, client)
  }).pipe(Effect.catchCause(() => Effect.void))
