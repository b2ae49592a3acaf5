import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Duplex } from "node:stream"
import type { Dispatcher } from "undici"
import { UpstreamError } from "../domain/errors.ts"
import type { HeaderMap } from "../domain/hopHeaders.ts"
import { classifyUpstreamError, isRetryableFailure } from "../domain/upstreamFailure.ts"
import { Config } from "./Config.ts"
import { upstreamConnectOptions } from "./tlsFiles.ts"
import { Agent, Client, kQueuedAbort, Pool } from "./undiciParts.ts"
import { acceptInterimContinue } from "./undiciInterim.ts"
import { parseBackend } from "../domain/routeTable.ts"

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
  /** Where the origin's interim (1xx) responses go; none: they are dropped (RFC 9110 §15.2). */
  readonly interim?: InterimSink | undefined
  /** Upgrade (RFC 9110 §7.8): the protocols offered to the origin; it may answer 101 (`upgraded`). */
  readonly upgrade?: string | undefined
}

/**
 * The origin's interim (1xx) responses, in the order they came, all before the final response's
 * `head`. They go to the client directly, past the response filters: a 1xx is not the response they
 * inspect, harden, compress or store.
 */
export interface InterimSink {
  interim(status: number, headers: HeaderMap): void
}

/**
 * Where the response goes. The bytes never become an Effect Stream here: undici hands chunks to the
 * sink natively and the sink's `false` from `data` pauses the upstream socket until `drain`.
 * Implementations are classes (one object per response, methods on the prototype): a wrapper
 * delegates to its inner sink by calling it, never by spreading it (`{...inner}` copies no methods).
 */
export interface ResponseSink {
  head(status: number, statusText: string | undefined, headers: HeaderMap): void
  data(chunk: Buffer): boolean
  onDrain(resume: () => void): void
  end(trailers: HeaderMap): void
  /** True once anything reached the client: a failure can no longer be answered, only cut. */
  started(): boolean
}

/** A wrapper that passes everything on to its inner sink; subclasses override what they change. */
export class DelegatingSink implements ResponseSink {
  readonly inner: ResponseSink
  constructor(inner: ResponseSink) {
    this.inner = inner
  }
  head(status: number, statusText: string | undefined, headers: HeaderMap): void {
    this.inner.head(status, statusText, headers)
  }
  data(chunk: Buffer): boolean {
    return this.inner.data(chunk)
  }
  onDrain(resume: () => void): void {
    this.inner.onDrain(resume)
  }
  end(trailers: HeaderMap): void {
    this.inner.end(trailers)
  }
  started(): boolean {
    return this.inner.started()
  }
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
  /** The Upgrade value sent to the origin (e.g. "websocket"). */
  readonly protocol: string
  readonly insecureTls?: boolean
  readonly interim?: InterimSink | undefined
}

export interface UpgradedConnection {
  readonly headers: HeaderMap
  readonly socket: Duplex
}

/** Stops an exchange in flight (its `done` is then never called). */
export interface Aborter {
  abort(): void
  /** Response body bytes handed to the sink so far (what an aborted exchange had relayed). */
  readonly bytes: number
}

export interface ForwardResult {
  readonly status: number
  readonly bytes: number
  /** An upgrade request the origin answered with 101: its head and the connection, now the caller's. */
  readonly upgraded?: UpgradedConnection | undefined
}

/** The reason undici is given when the client's side stops an exchange. */
const interrupted = (): Error => new Error("request interrupted")

/**
 * RFC 9112 §6.1: `chunked` is the only transfer coding undici decodes, and the proxy re-frames what
 * it relays, so a response carrying any other coding (`gzip, chunked`, a bare `gzip`) would reach the
 * client with that coding silently dropped: a corrupt body. nginx answers 502 ("upstream sent unknown
 * Transfer-Encoding"); so does this proxy. One field, `chunked` in any case, is accepted, with
 * trailing spaces (undici keeps them; its parser reads the value as chunked). Not a trailing tab:
 * llhttp does not take `chunked\t` as chunked and would read the body until close, framing included.
 */
const knownTransferCoding = (te: string | Array<string>): boolean => {
  if (typeof te !== "string") return false
  if (te === "chunked") return true
  let end = te.length
  while (end > 0 && te.charCodeAt(end - 1) === 32) end--
  return end === 7 && te.slice(0, 7).toLowerCase() === "chunked"
}

/** Upstream HTTP exchanges over keep-alive pools (one undici pool per origin). */
export class Upstream extends Context.Service<Upstream, {
  /** `cutShort`: called with the bytes relayed so far when the exchange is interrupted before its end. */
  forward(request: ForwardRequest, sink: ResponseSink, cutShort?: (bytes: number) => void): Effect.Effect<ForwardResult, UpstreamError>
  /**
   * The same exchange driven in undici's callbacks, for the request path's native relay: `done` is
   * called once with the result or the typed failure (never after the returned abort is called).
   */
  send(request: ForwardRequest, sink: ResponseSink, done: (outcome: ForwardResult | UpstreamError) => void): Aborter
  /** Pool stats per origin ("scheme://host:port"), read when metrics are scraped. */
  readonly poolStats: () => ReadonlyMap<string, PoolStats>
  /**
   * HTTP/1.1 Upgrade (RFC 9110 §7.8). A 101 resolves with `upgraded` (its head and the connection);
   * any other final response is the origin declining, relayed to `sink` like a forwarded response.
   */
  upgrade(request: UpgradeRequest, sink: ResponseSink): Effect.Effect<ForwardResult, UpstreamError>
}>()("gatehouse/Upstream") {
  static readonly layer = Layer.effect(
    Upstream,
    Effect.gen(function*() {
      const { server, upstream: pool, security, routing } = yield* Config
      yield* acceptInterimContinue
      const tlsConnect = yield* upstreamConnectOptions(security.upstream_tls)
      /**
       * One keep-alive pool per origin, with the given connect options. HTTP/1.1 to every upstream,
       * like nginx and Envoy by default: undici 8 would otherwise negotiate h2 by ALPN with an HTTPS
       * origin that offers it, where the hop-by-hop rules, Upgrade and 100-continue this proxy
       * implements do not apply (and the bundle leaves node:http2 out, scripts/bundle.ts).
       */
      const options = (connect: Record<string, unknown>) => ({
        allowH2: false,
        keepAliveTimeout: pool.keepalive_timeout,
        keepAliveMaxTimeout: Math.max(server.timeouts.idle, pool.keepalive_timeout),
        connect: { timeout: server.timeouts.connect, ...connect },
        headersTimeout: server.timeouts.read,
        bodyTimeout: server.timeouts.read,
        pipelining: pool.pipelining,
        connections: pool.max_connections_per_origin === 0 ? null : pool.max_connections_per_origin
      })
      const closing = <D extends Dispatcher>(make: () => D) =>
        Effect.acquireRelease(Effect.sync(make), (d) => Effect.promise(() => d.destroy().catch(() => undefined)))
      const pooled = (connect: Record<string, unknown>) => closing(() => new Agent(options(connect)))
      const agent = yield* pooled(tlsConnect)
      // Routes with tls_insecure_skip_verify get their own pool that does not verify certificates.
      const insecureRoutes = routing.rules.filter((r) => r.tls_insecure_skip_verify === true)
      for (const r of insecureRoutes) {
        yield* Effect.logWarning("upstream TLS certificate verification disabled for a route").pipe(
          Effect.annotateLogs({ target: r.forward.target, key: "tls_insecure_skip_verify" })
        )
      }
      const insecure = insecureRoutes.length === 0 ? undefined : yield* pooled({ rejectUnauthorized: false })
      /**
       * The configured backends' pools, built here and dispatched to directly (the Agent builds the same
       * Pool, or a Client for one connection, on an origin's first request): the Agent's per-request
       * work (a pool key string built and looked up) is skipped, and these pools stay for the process's
       * life where the Agent closes an origin's pool once its connections are gone. Upgrade requests to
       * them use the same pools; forward-proxy targets, and routes that skip certificate checks, go
       * through the Agents.
       */
      const direct = new Map<string, Dispatcher>()
      for (const target of [routing.default_backend, ...routing.rules.filter((r) => r.tls_insecure_skip_verify !== true).map((r) => r.forward.target)]) {
        if (target === "") continue
        const { origin } = parseBackend(target)
        if (direct.has(origin)) continue
        const opts = options(tlsConnect)
        direct.set(origin, yield* closing(() => opts.connections === 1 ? new Client(origin, opts) : new Pool(origin, opts)))
      }
      /**
       * One exchange in undici's callbacks, as one object: it is the dispatch handler (prototype
       * methods, no closure per callback) and the caller's abort handle. RFC 9110 §9.2.2: a retryable
       * request (idempotent, no body) is dispatched once more on a connect/reset failure before any
       * response byte. "Before any response byte" is `responded`, not `sink.started()`: a filter may
       * hold the head (and some body) back from the client, and a retry would then answer with a
       * second response behind the first one's held bytes. `done` is called once (result or typed
       * failure), never after `abort`.
       *
       * An abort before the request reached a connection (it waits in the pool's queue while every
       * allowed connection is busy, or while one is being opened) takes it out of the queue through the
       * cancel function the pool handed over (`kQueuedAbort`), and `onRequestStart` aborts one that was
       * being handed to a connection at that moment. Without both, such a request later ran with
       * nobody to deliver its response to, and held its connection paused for good.
       */
      class Exchange implements Dispatcher.DispatchHandler, Aborter {
        controller: Dispatcher.DispatchController | undefined = undefined
        cancelQueued: ((reason: Error) => void) | undefined = undefined
        status = 0
        bytes = 0
        settled = false
        retried = false
        /** The origin's response (or an interim one) began: the request reached it, no more retry. */
        responded = false
        readonly request: ForwardRequest
        readonly sink: ResponseSink
        readonly done: (outcome: ForwardResult | UpstreamError) => void
        constructor(request: ForwardRequest, sink: ResponseSink, done: (outcome: ForwardResult | UpstreamError) => void) {
          this.request = request
          this.sink = sink
          this.done = done
        }

        dispatch(): void {
          const request = this.request
          ;(request.insecureTls === true ? insecure ?? agent : direct.get(request.origin) ?? agent).dispatch({
            origin: request.origin,
            path: request.path,
            method: request.method as Dispatcher.HttpMethod,
            headers: request.headers,
            body: request.body as NonNullable<Dispatcher.DispatchOptions["body"]> | null,
            upgrade: request.upgrade,
            [kQueuedAbort]: (cancel: (reason: Error) => void) => {
              this.cancelQueued = cancel
            }
          } as Dispatcher.DispatchOptions, this)
        }

        abort(): void {
          this.settled = true
          const cancel = this.cancelQueued
          this.cancelQueued = undefined
          if (this.controller !== undefined) this.controller.abort(interrupted())
          else cancel?.(interrupted())
        }

        onRequestStart(c: Dispatcher.DispatchController): void {
          this.controller = c
          this.cancelQueued = undefined
          if (this.settled) c.abort(interrupted())
        }

        onResponseStart(c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | Array<string> | undefined>, statusMessage?: string): void {
          if (this.settled) return
          this.responded = true
          if (statusCode < 200) {
            // RFC 9110 §15.2: an interim response; the final one follows
            this.request.interim?.interim(statusCode, headers as HeaderMap)
            return
          }
          const te = headers["transfer-encoding"]
          if (te !== undefined && !knownTransferCoding(te)) {
            // aborting destroys the connection (its framing is unknown): 502 bad_response
            c.abort(new Error(`upstream sent unknown Transfer-Encoding: ${String(te)}`))
            return
          }
          this.status = statusCode
          try {
            this.sink.head(statusCode, statusMessage, headers as HeaderMap)
          } catch (e) {
            // Node refused the head (a header value it will not write): a broken upstream response.
            c.abort(e as Error)
          }
        }

        onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
          if (this.settled) return
          this.bytes += chunk.length
          if (!this.sink.data(chunk)) {
            c.pause()
            this.sink.onDrain(() => c.resume())
          }
        }

        onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | Array<string> | undefined>): void {
          if (this.settled) return
          this.settled = true
          this.sink.end(trailers as HeaderMap)
          this.done({ status: this.status, bytes: this.bytes })
        }

        /** An upgrade request answered 101 (undici calls this only for requests sent with `upgrade`). */
        onRequestUpgrade(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | Array<string> | undefined>, socket: Duplex): void {
          if (this.settled) {
            // the caller gave up (its abort ran): nobody will take the connection
            socket.destroy()
            return
          }
          this.settled = true
          this.status = statusCode
          this.done({ status: statusCode, bytes: 0, upgraded: { headers: headers as HeaderMap, socket } })
        }

        onResponseError(_c: Dispatcher.DispatchController, cause: Error): void {
          if (this.settled) return
          const request = this.request
          const failure = new UpstreamError({ reason: classifyUpstreamError(cause), upstream: request.origin, responseStarted: this.sink.started(), cause })
          if (request.retryable && !this.retried && !this.responded && isRetryableFailure(failure.reason)) {
            this.retried = true
            this.controller = undefined
            this.status = 0
            this.bytes = 0
            this.dispatch()
            return
          }
          this.settled = true
          this.done(failure)
        }
      }
      const send = (request: ForwardRequest, sink: ResponseSink, done: (outcome: ForwardResult | UpstreamError) => void): Aborter => {
        const exchange = new Exchange(request, sink, done)
        exchange.dispatch()
        return exchange
      }
      /**
       * Every pool the proxy dispatches to: the configured backends', the Agent's, and the Agent of the
       * routes that skip certificate checks. One origin can have pools in more than one of them (a
       * route with tls_insecure_skip_verify and another without, to the same origin): they are summed.
       */
      const poolStats = () => {
        const out = new Map<string, PoolStats>()
        const add = (origin: string, st: Agent["stats"][string]) => {
          const connected = typeof st.connected === "boolean" ? (st.connected ? 1 : 0) : st.connected
          const free = "free" in st ? st.free : connected - (st.running > 0 ? 1 : 0)
          const queued = "queued" in st ? st.queued : Math.max(0, st.size - st.running - st.pending)
          const seen = out.get(origin)
          out.set(origin, seen === undefined
            ? { connected, free, pending: st.pending, queued, running: st.running, size: st.size }
            : {
              connected: seen.connected + connected,
              free: seen.free + free,
              pending: seen.pending + st.pending,
              queued: seen.queued + queued,
              running: seen.running + st.running,
              size: seen.size + st.size
            })
        }
        for (const [origin, st] of Object.entries(agent.stats)) add(origin, st)
        if (insecure !== undefined) for (const [origin, st] of Object.entries(insecure.stats)) add(origin, st)
        for (const [origin, d] of direct) add(origin, (d as Pool | Client).stats)
        return out
      }
      const forward = (request: ForwardRequest, sink: ResponseSink, cutShort?: (bytes: number) => void) =>
        Effect.callback<ForwardResult, UpstreamError>((resume) => {
          const exchange = send(request, sink, (outcome) => resume(outcome instanceof UpstreamError ? Effect.fail(outcome) : Effect.succeed(outcome)))
          return Effect.sync(() => {
            exchange.abort()
            cutShort?.(exchange.bytes)
          })
        })
      return Upstream.of({
        // The same exchange with undici's `upgrade` dispatch option: a 101 comes to onRequestUpgrade,
        // any other answer through the sink like a forwarded response (undici's own upgrade() API
        // turns every answer but 101 into a "bad upgrade" failure).
        upgrade: (request, sink) =>
          forward({
            origin: request.origin,
            path: request.path,
            method: request.method,
            headers: request.headers,
            body: null,
            retryable: false,
            upgrade: request.protocol,
            interim: request.interim,
            ...(request.insecureTls === true ? { insecureTls: true } : {})
          }, sink),
        poolStats,
        send,
        forward
      })
    })
  )
}
