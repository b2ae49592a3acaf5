/**
 * The listener: one node:http server whose events are bridged into Effect. Each request goes to
 * RequestPipeline.handle (which tracks it until its end); each CONNECT and Upgrade tunnel runs as
 * a fiber in a FiberSet built once with the layer's services; the client going away interrupts it.
 * What the server answers itself (heads refused or timed out, oversize header sections, body framing
 * errors) is answered and logged once by connectionRefusals.ts; a connection answered while its client
 * is still sending closes lingering (lingeringClose.ts). Closing the layer's scope is the graceful
 * shutdown: readiness turns 503, the listener stops accepting, in-flight work gets `shutdown_grace`,
 * the rest is interrupted.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import { type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { Duplex } from "node:stream"
import { AccessLog } from "../services/AccessLog.ts"
import { Config } from "../services/Config.ts"
import { Filter } from "../services/Filter.ts"
import { DestinationGuard } from "../services/DestinationGuard.ts"
import { ProxyAuth } from "../services/ProxyAuth.ts"
import { RateLimiter } from "../services/RateLimiter.ts"
import { Lifecycle } from "../services/Lifecycle.ts"
import { Reclaimer } from "../services/Reclaimer.ts"
import { Metrics } from "../services/Metrics.ts"
import { closeAwaiting } from "./connectionHandBack.ts"
import { makeConnectionRefusals } from "./connectionRefusals.ts"
import { makeConnectionTracker, responsesInFlight } from "./connectionState.ts"
import { lingerAfterLastResponse } from "./lingeringClose.ts"
import { connectTunnel } from "./connectTunnel.ts"
import { makeServer, reloadCertificatesOnSighup } from "./tlsListener.ts"
import { listenerSecureOptions } from "../services/tlsFiles.ts"
import { upgradeTunnel } from "./upgradeTunnel.ts"
import { makeSecurityHeaders } from "./securityHeaders.ts"
import { Router } from "../services/Router.ts"
import { Upstream } from "../services/Upstream.ts"
import { normaliseIp, RequestPipeline, VIA } from "./RequestPipeline.ts"
import { listenServer } from "../services/listenServer.ts"

export interface ListenerInfo {
  readonly server: Server
  readonly port: number
  readonly host: string
}

export const makeListener = Effect.gen(function*() {
  const config = yield* Config
  const pipeline = yield* RequestPipeline
  const accessLog = yield* AccessLog
  const lifecycle = yield* Lifecycle
  const metrics = yield* Metrics
  const filter = yield* Filter
  const destinations = yield* DestinationGuard
  const { server: cfg } = config
  const fibers = yield* FiberSet.make<void, never>()
  const run = yield* FiberSet.runtime(fibers)<never>()
  const clock = yield* Clock.Clock
  const now = () => clock.monotonicTimeNanosUnsafe()
  const clientIp = (sock: object) => normaliseIp((sock as { remoteAddress?: string }).remoteAddress)
  const tracker = makeConnectionTracker(now)
  // heads refused or timed out, oversize header sections, body framing errors (connectionRefusals.ts)
  const refusals = makeConnectionRefusals({
    maxUrlBytes: cfg.limits.max_url_bytes,
    maxHeaderBytes: cfg.limits.max_header_bytes,
    readTimeoutMs: cfg.timeouts.read,
    now,
    tracker,
    requestId: pipeline.requestId,
    clientIp,
    log: accessLog.log,
    metrics
  })

  // server.tls: an HTTPS listener with the same options (tlsListener.ts)
  const server = makeServer(cfg.tls.enabled ? yield* listenerSecureOptions(cfg.tls) : undefined, {
    // Node counts the request-target and the field names and values (not the colons, whitespace and
    // CRLFs) and refuses at this many: room for every head within both limits; the header section is
    // then measured as the README counts it (connectionRefusals.ts)
    maxHeaderSize: cfg.limits.max_url_bytes + cfg.limits.max_header_bytes + 1,
    requireHostHeader: false, // checked in the validate phase, so the answer is our JSON problem
    headersTimeout: cfg.timeouts.read,
    requestTimeout: 0,
    keepAliveTimeout: cfg.timeouts.idle,
    connectionsCheckingInterval: Math.min(1000, cfg.timeouts.read),
    noDelay: true,
    // TLS: a handshake gets what a head gets, instead of Node's 120 s (a stalled ClientHello held a
    // connection that long whatever timeouts.read said)
    handshakeTimeout: cfg.timeouts.read
  })
  server.timeout = Math.max(cfg.timeouts.read, cfg.timeouts.write)
  // (a wait that is the upstream's is left to its timers, or answered 504 by the pipeline)
  server.on("timeout", (socket: Duplex) => { if (!pipeline.upstreamWait(socket)) refusals.timeout(socket) })
  // (an HTTPS server attaches its parser at 'secureConnection', after the handshake)
  server.on(cfg.tls.enabled ? "secureConnection" : "connection", (sock: Duplex) => {
    tracker.accepted(sock)
    lingerAfterLastResponse(sock)
  })

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (refusals.admitRequest(req, res)) pipeline.handle(req, res, false)
  })
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (refusals.admitRequest(req, res)) pipeline.handle(req, res, true)
  })
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    if (!refusals.admitRequest(req, res)) return
    const body = JSON.stringify({ error: "expectation_failed", detail: "only 100-continue is supported" }) + "\n"
    res.writeHead(417, { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close" })
    res.end(body)
  })
  const tunnelDeps = {
    config,
    accessLog,
    lifecycle,
    requestId: pipeline.requestId,
    clientIp,
    filter,
    proxyAuth: yield* ProxyAuth,
    rateLimiter: yield* RateLimiter,
    destinations,
    metrics,
    reclaimer: yield* Reclaimer
  }
  // IP ACL at accept: the verdict is kept for the connection; a denied client's first request
  // (or CONNECT) is answered 403 with `connection: close` (pipeline phase "acl").
  server.on("connection", (sock: Duplex) => filter.admit(sock, clientIp(sock)))
  if (metrics.enabled) {
    server.on("connection", (sock: Duplex) => {
      metrics.connections(1)
      sock.once("close", () => metrics.connections(-1))
    })
  }
  const upgradeDeps = {
    config,
    router: yield* Router,
    upstream: yield* Upstream,
    accessLog,
    requestId: pipeline.requestId,
    isSelf: pipeline.isSelf,
    clientIp: tunnelDeps.clientIp,
    via: VIA,
    filter,
    proxyAuth: tunnelDeps.proxyAuth,
    rateLimiter: tunnelDeps.rateLimiter,
    destinations,
    metrics,
    reclaimer: tunnelDeps.reclaimer,
    securityHeaders: makeSecurityHeaders(config.security.headers)
  }
  server.on("upgrade", (req: IncomingMessage, sock: Duplex, head: Buffer) => {
    sock.on("error", () => {})
    if (!refusals.admitTunnel(req, sock)) return
    const fiber = run(upgradeTunnel(upgradeDeps, req, sock, head))
    metrics.tunnels(1)
    sock.once("close", () => {
      metrics.tunnels(-1)
      fiber.interruptUnsafe()
    })
  })
  server.on("connect", (req: IncomingMessage, sock: Duplex, head: Buffer) => {
    sock.on("error", () => {})
    if (!refusals.admitTunnel(req, sock)) return
    const fiber = run(connectTunnel(tunnelDeps, req, sock, head))
    metrics.tunnels(1)
    sock.once("close", () => {
      metrics.tunnels(-1)
      fiber.interruptUnsafe()
    })
  })
  server.on("clientError", refusals.clientError)

  const port = yield* listenServer(server, "server", cfg.port, cfg.host, 4096)
  yield* reloadCertificatesOnSighup(server, cfg.tls)
  destinations.addListener(port)
  yield* lifecycle.markListening
  yield* lifecycle.markStarted
  yield* Effect.logInfo("gatehouse listening").pipe(
    Effect.annotateLogs({ host: cfg.host, port, config: config.sources.join(" + ") || "embedded defaults" })
  )

  // Graceful shutdown: runs before the FiberSet's own finalizer interrupts what is left.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* lifecycle.beginDrain
      yield* pipeline.drain
      // responses already in flight whose head is not out yet close their connection too (RFC 9112 §9.6)
      for (const res of responsesInFlight(server)) if (!res.headersSent) res.shouldKeepAlive = false
      const inFlight = (yield* FiberSet.size(fibers)) + pipeline.inFlight()
      yield* Effect.logInfo("gatehouse draining").pipe(Effect.annotateLogs({ in_flight: inFlight, grace_ms: cfg.timeouts.shutdown_grace }))
      server.close()
      server.closeIdleConnections()
      closeAwaiting(server)
      const settled = Effect.andThen(pipeline.idle, FiberSet.awaitEmpty(fibers))
      const drained = yield* settled.pipe(Effect.timeoutOption(cfg.timeouts.shutdown_grace))
      server.closeAllConnections()
      // what was cut ends on its connection's 'close' (a tick later): let each record its access-log
      // line and metrics before the layers below (the log's last flush) close
      // (tunnels are not in Node's connection list any more: their fibers are interrupted, logged `interrupted`)
      if (drained._tag === "None") yield* Effect.andThen(FiberSet.clear(fibers), settled).pipe(Effect.timeoutOption(CUT_SETTLE_MS))
      yield* Effect.logInfo("gatehouse stopped").pipe(Effect.annotateLogs({ drained: drained._tag === "Some" }))
    })
  )
  return { server, port, host: cfg.host } satisfies ListenerInfo
})

/** How long requests cut at the end of shutdown_grace get to record themselves (they only unwind). */
const CUT_SETTLE_MS = 2000

/** The bound listener; tests read the port it got (port 0 → a free one). */
export class Listener extends Context.Service<Listener, ListenerInfo>()("gatehouse/Listener") {
  static readonly layer = Layer.effect(Listener, makeListener)
}
