import { Context, Effect, Layer } from "effect"
import { Agent, type Dispatcher } from "undici"
import { UpstreamError } from "../domain/errors.ts"
import type { HeaderMap } from "../domain/hopHeaders.ts"
import { classifyUpstreamError, isRetryableFailure } from "../domain/upstreamFailure.ts"
import { Config } from "./Config.ts"

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

export interface ForwardResult {
  readonly status: number
  readonly bytes: number
}

/** Upstream HTTP exchanges over keep-alive pools (one undici pool per origin). */
export class Upstream extends Context.Service<Upstream, {
  forward(request: ForwardRequest, sink: ResponseSink): Effect.Effect<ForwardResult, UpstreamError>
}>()("gatehouse/Upstream") {
  static readonly layer = Layer.effect(
    Upstream,
    Effect.gen(function*() {
      const { server } = yield* Config
      const agent = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new Agent({
            keepAliveTimeout: 4_000,
            keepAliveMaxTimeout: Math.max(server.timeouts.idle, 4_000),
            connect: { timeout: server.timeouts.connect },
            headersTimeout: server.timeouts.read,
            bodyTimeout: server.timeouts.read,
            pipelining: 1
          })
        ),
        (a) => Effect.promise(() => a.destroy().catch(() => undefined))
      )
      const attempt = (request: ForwardRequest, sink: ResponseSink) =>
        Effect.callback<ForwardResult, UpstreamError>((resume) => {
          let controller: Dispatcher.DispatchController | undefined
          let status = 0
          let bytes = 0
          let done = false
          const fail = (cause: unknown) => {
            if (done) return
            done = true
            resume(Effect.fail(new UpstreamError({
              reason: classifyUpstreamError(cause),
              upstream: request.origin,
              responseStarted: sink.started(),
              cause
            })))
          }
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
              if (done) return
              done = true
              sink.end(trailers as HeaderMap)
              resume(Effect.succeed({ status, bytes }))
            },
            onResponseError: (_c, err) => fail(err)
          }
          agent.dispatch({
            origin: request.origin,
            path: request.path,
            method: request.method as Dispatcher.HttpMethod,
            headers: request.headers,
            body: request.body as NonNullable<Dispatcher.DispatchOptions["body"]> | null
          }, handler)
          return Effect.sync(() => {
            done = true
            controller?.abort(new Error("request interrupted"))
          })
        })
      return Upstream.of({
        forward: (request, sink) =>
          request.retryable
            ? attempt(request, sink).pipe(
              Effect.retry({ times: 1, while: (e) => !e.responseStarted && isRetryableFailure(e.reason) })
            )
            : attempt(request, sink)
      })
    })
  )
}
