import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Duplex } from "node:stream"
import { Agent, type Dispatcher } from "undici"
import { UpstreamError } from "../domain/errors.ts"
import type { HeaderMap } from "../domain/hopHeaders.ts"
import { classifyUpstreamError, isRetryableFailure } from "../domain/upstreamFailure.ts"
import { Config } from "./Config.ts"
import { upstreamConnectOptions } from "./tlsFiles.ts"

export interface ForwardRequest {
  /** scheme://host:port: the pool key. */
  readonly origin: string
  readonly path: string
  readonly method: string
  /** Flat [name, value, ...] list, already cleaned of hop-by-hop fields. */
  readonly headers: Array<string>
  readonly body: NodeJS.ReadableStream | AsyncIterable<Uint8Array> | null
  /** RFC 9110 §9.2.2: idempotent method and no request body, so a failed attempt may be repeated. */
  readonly retryable: boolean
  /** The route opted out of upstream certificate verification (tls_insecure_skip_verify). */
  readonly insecureTls?: boolean
}

/**
 * Where the response goes. The bytes never become an Effect Stream here: undici hands chunks to the
 * sink natively and the sink's `false` from `data` pauses the upstream socket until `drain`.
 */
export interface ResponseSink {
  head(status: number, statusText: string | undefined, headers: HeaderMap): void
  data(chunk: Buffer): boolean
  onDrain(resume: () => void): void
  end(trailers: HeaderMap): void
  /** True once anything reached the client: a failure can no longer be answered, only cut. */
  readonly started: () => boolean
}

/** One origin's pool, as undici counts it (a Client when max_connections_per_origin is 1). */
export interface PoolStats {
  readonly connected: number
  readonly free: number
  readonly pending: number
  readonly queued: number
  readonly running: number
  readonly size: number
}

export interface UpgradeRequest {
  readonly origin: string
  readonly path: string
  readonly method: string
  readonly headers: Array<string>
  /** The Upgrade value the client asked for (e.g. "websocket"). */
  readonly protocol: string
}

export interface UpgradedConnection {
  readonly headers: HeaderMap
  readonly socket: Duplex
}

export interface ForwardResult {
  readonly status: number
  readonly bytes: number
}

/** Upstream HTTP exchanges over keep-alive pools (one undici pool per origin). */
export class Upstream extends Context.Service<Upstream, {
  forward(request: ForwardRequest, sink: ResponseSink): Effect.Effect<ForwardResult, UpstreamError>
  /**
   * The same exchange driven in undici's callbacks, for the request path's native relay: `done` is
   * called once with the result or the typed failure (never after the returned abort is called).
   */
  send(request: ForwardRequest, sink: ResponseSink, done: (outcome: ForwardResult | UpstreamError) => void): () => void
  /** Pool stats per origin ("scheme://host:port"), read when metrics are scraped. */
  readonly poolStats: () => ReadonlyMap<string, PoolStats>
  /** HTTP/1.1 Upgrade (RFC 9110 §7.8): resolves with the upstream's 101 head and its socket. */
  upgrade(request: UpgradeRequest): Effect.Effect<UpgradedConnection, UpstreamError>
}>()("gatehouse/Upstream") {
  static readonly layer = Layer.effect(
    Upstream,
    Effect.gen(function*() {
      const { server, upstream: pool, security, routing } = yield* Config
      const tlsConnect = yield* upstreamConnectOptions(security.upstream_tls)
      const agent = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new Agent({
            keepAliveTimeout: pool.keepalive_timeout,
            keepAliveMaxTimeout: Math.max(server.timeouts.idle, pool.keepalive_timeout),
            connect: { timeout: server.timeouts.connect, ...tlsConnect },
            headersTimeout: server.timeouts.read,
            bodyTimeout: server.timeouts.read,
            pipelining: pool.pipelining,
            connections: pool.max_connections_per_origin === 0 ? null : pool.max_connections_per_origin
          })
        ),
        (a) => Effect.promise(() => a.destroy().catch(() => undefined))
      )
      // Routes with tls_insecure_skip_verify get their own pool that does not verify certificates.
      const insecureRoutes = routing.rules.filter((r) => r.tls_insecure_skip_verify === true)
      for (const r of insecureRoutes) {
        yield* Effect.logWarning("upstream TLS certificate verification disabled for a route").pipe(
          Effect.annotateLogs({ target: r.forward.target, key: "tls_insecure_skip_verify" })
        )
      }
      const insecure = insecureRoutes.length === 0 ? undefined : yield* Effect.acquireRelease(
        Effect.sync(() => new Agent({
          keepAliveTimeout: pool.keepalive_timeout,
          keepAliveMaxTimeout: Math.max(server.timeouts.idle, pool.keepalive_timeout),
          connect: { timeout: server.timeouts.connect, rejectUnauthorized: false },
          headersTimeout: server.timeouts.read,
          bodyTimeout: server.timeouts.read,
          pipelining: pool.pipelining,
          connections: pool.max_connections_per_origin === 0 ? null : pool.max_connections_per_origin
        })),
        (a) => Effect.promise(() => a.destroy().catch(() => undefined))
      )
      /** One attempt in undici's callbacks; `done` is called once (result or typed failure). */
      const attempt = (request: ForwardRequest, sink: ResponseSink, done: (outcome: ForwardResult | UpstreamError) => void): () => void => {
        let controller: Dispatcher.DispatchController | undefined
        let status = 0
        let bytes = 0
        let settled = false
        const handler: Dispatcher.DispatchHandler = {
          onRequestStart: (c) => { controller = c },
          onResponseStart: (c, statusCode, headers, statusMessage) => {
            status = statusCode
            try {
              sink.head(statusCode, statusMessage, headers as HeaderMap)
            } catch (e) {
              // Node refused the head (a header value it will not write): a broken upstream response.
              c.abort(e as Error)
            }
          },
          onResponseData: (c, chunk) => {
            bytes += chunk.length
            if (!sink.data(chunk)) {
              c.pause()
              sink.onDrain(() => c.resume())
            }
          },
          onResponseEnd: (_c, trailers) => {
            if (settled) return
            settled = true
            sink.end(trailers as HeaderMap)
            done({ status, bytes })
          },
          onResponseError: (_c, cause) => {
            if (settled) return
            settled = true
            done(new UpstreamError({ reason: classifyUpstreamError(cause), upstream: request.origin, responseStarted: sink.started(), cause }))
          }
        }
        ;(request.insecureTls === true ? insecure ?? agent : agent).dispatch({
          origin: request.origin,
          path: request.path,
          method: request.method as Dispatcher.HttpMethod,
          headers: request.headers,
          body: request.body as NonNullable<Dispatcher.DispatchOptions["body"]> | null
        }, handler)
        return () => {
          settled = true
          controller?.abort(new Error("request interrupted"))
        }
      }
      // RFC 9110 §9.2.2: one more attempt, for idempotent requests without a body, on a
      // connect/reset failure before any response byte
      const send = (request: ForwardRequest, sink: ResponseSink, done: (outcome: ForwardResult | UpstreamError) => void): () => void => {
        if (!request.retryable) return attempt(request, sink, done)
        let abort = attempt(request, sink, (first) => {
          if (first instanceof UpstreamError && !first.responseStarted && isRetryableFailure(first.reason)) {
            abort = attempt(request, sink, done)
          } else done(first)
        })
        return () => abort()
      }
      const poolStats = () => {
        const out = new Map<string, PoolStats>()
        for (const [origin, st] of Object.entries(agent.stats)) {
          const connected = typeof st.connected === "boolean" ? (st.connected ? 1 : 0) : st.connected
          const free = "free" in st ? st.free : connected - (st.running > 0 ? 1 : 0)
          const queued = "queued" in st ? st.queued : Math.max(0, st.size - st.running - st.pending)
          out.set(origin, { connected, free, pending: st.pending, queued, running: st.running, size: st.size })
        }
        return out
      }
      const upgrade = (request: UpgradeRequest) =>
        Effect.callback<UpgradedConnection, UpstreamError>((resume) => {
          const abort = new AbortController()
          agent.upgrade({
            origin: request.origin,
            path: request.path,
            method: request.method,
            headers: request.headers,
            protocol: request.protocol,
            signal: abort.signal
          } as Dispatcher.UpgradeOptions, (err, data) => {
            if (err !== null) {
              resume(Effect.fail(new UpstreamError({ reason: classifyUpstreamError(err), upstream: request.origin, responseStarted: false, cause: err })))
            } else resume(Effect.succeed({ headers: data.headers as HeaderMap, socket: data.socket }))
          })
          return Effect.sync(() => abort.abort())
        })
      return Upstream.of({
        upgrade,
        poolStats,
        send,
        forward: (request, sink) =>
          Effect.callback<ForwardResult, UpstreamError>((resume) => {
            const abort = send(request, sink, (outcome) => resume(outcome instanceof UpstreamError ? Effect.fail(outcome) : Effect.succeed(outcome)))
            return Effect.sync(abort)
          })
      })
    })
  )
}
