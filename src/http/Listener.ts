/**
 * The listener: one node:http server whose events are bridged into Effect. Each request goes to
 * RequestPipeline.handle (which tracks it until its end); each CONNECT and Upgrade tunnel runs as
 * a fiber in a FiberSet built once with the layer's services; the client going away interrupts it. Closing the layer's scope is the graceful shutdown: readiness
 * turns 503, the listener stops accepting, in-flight work gets `shutdown_grace`, the rest is
 * interrupted.
 */
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
import { answerParserError, type ParserError, problemForParserError } from "./clientError.ts"
import { connectTunnel } from "./connectTunnel.ts"
import { makeServer, reloadCertificatesOnSighup } from "./tlsListener.ts"
import { listenerSecureOptions } from "../services/tlsFiles.ts"
import { upgradeTunnel } from "./upgradeTunnel.ts"
import { cutOnTimeout } from "./socketTimeouts.ts"
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

  // server.tls: an HTTPS listener with the same options (tlsListener.ts)
  const server = makeServer(cfg.tls.enabled ? yield* listenerSecureOptions(cfg.tls) : undefined, {
    maxHeaderSize: cfg.limits.max_header_bytes,
    requireHostHeader: false, // checked in the validate phase, so the answer is our JSON problem
    headersTimeout: cfg.timeouts.read,
    requestTimeout: 0,
    keepAliveTimeout: cfg.timeouts.idle,
    connectionsCheckingInterval: Math.min(1000, cfg.timeouts.read),
    noDelay: true
  })
  server.timeout = Math.max(cfg.timeouts.read, cfg.timeouts.write)
  server.on("timeout", cutOnTimeout)

  server.on("request", (req: IncomingMessage, res: ServerResponse) => pipeline.handle(req, res, false))
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => pipeline.handle(req, res, true))
  server.on("checkExpectation", (_req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify({ error: "expectation_failed", detail: "only 100-continue is supported" }) + "\n"
    res.writeHead(417, { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close" })
    res.end(body)
  })
  const tunnelDeps = {
    config,
    accessLog,
    lifecycle,
    requestId: pipeline.requestId,
    clientIp: (sock: Duplex) => normaliseIp((sock as { remoteAddress?: string }).remoteAddress),
    filter,
    proxyAuth: yield* ProxyAuth,
    rateLimiter: yield* RateLimiter,
    destinations,
    metrics,
    reclaimer: yield* Reclaimer
  }
  // IP ACL at accept: the verdict is kept for the connection; a denied client's first request
  // (or CONNECT) is answered 403 with `connection: close` (pipeline phase "acl").
  server.on("connection", (sock: Duplex) => filter.admit(sock, normaliseIp((sock as { remoteAddress?: string }).remoteAddress)))
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
    reclaimer: tunnelDeps.reclaimer
  }
  server.on("upgrade", (req: IncomingMessage, sock: Duplex, head: Buffer) => {
    sock.on("error", () => {})
    const fiber = run(upgradeTunnel(upgradeDeps, req, sock, head))
    metrics.tunnels(1)
    sock.once("close", () => {
      metrics.tunnels(-1)
      fiber.interruptUnsafe()
    })
  })
  server.on("connect", (req: IncomingMessage, sock: Duplex, head: Buffer) => {
    sock.on("error", () => {})
    const fiber = run(connectTunnel(tunnelDeps, req, sock, head))
    metrics.tunnels(1)
    sock.once("close", () => {
      metrics.tunnels(-1)
      fiber.interruptUnsafe()
    })
  })
  server.on("clientError", (err: ParserError, sock: Duplex) => {
    const problem = problemForParserError(err, cfg.limits.max_url_bytes, cfg.limits.max_header_bytes)
    answerParserError(sock, problem)
    if (problem !== undefined) {
      run(accessLog.write({
        request_id: pipeline.requestId(undefined),
        client_ip: normaliseIp((sock as { remoteAddress?: string }).remoteAddress),
        method: "-",
        url: "-",
        status: problem.status,
        bytes_in: err.rawPacket?.length ?? 0,
        bytes_out: 0,
        duration_ms: 0,
        upstream: "",
        outcome: `parse_error:${err.code ?? "unknown"}`,
        kind: "invalid"
      }))
    }
  })

  const port = yield* listenServer(server, "server.port", cfg.port, cfg.host, 4096)
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
      const inFlight = (yield* FiberSet.size(fibers)) + pipeline.inFlight()
      yield* Effect.logInfo("gatehouse draining").pipe(Effect.annotateLogs({ in_flight: inFlight, grace_ms: cfg.timeouts.shutdown_grace }))
      server.close()
      server.closeIdleConnections()
      const drained = yield* Effect.andThen(pipeline.idle, FiberSet.awaitEmpty(fibers)).pipe(Effect.timeoutOption(cfg.timeouts.shutdown_grace))
      server.closeAllConnections()
      yield* Effect.logInfo("gatehouse stopped").pipe(Effect.annotateLogs({ drained: drained._tag === "Some" }))
    })
  )
  return { server, port, host: cfg.host } satisfies ListenerInfo
})

/** The bound listener; tests read the port it got (port 0 → a free one). */
export class Listener extends Context.Service<Listener, ListenerInfo>()("gatehouse/Listener") {
  static readonly layer = Layer.effect(Listener, makeListener)
}
