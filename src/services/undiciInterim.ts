/**
 * RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses received prior to a final
 * response, even if the client does not expect one." undici 8's HTTP/1.1 client hands 102, 103 and the
 * other interim responses to the handler's `onResponseStart` and goes on to read the final response,
 * but it takes a `100 Continue` for a protocol error and destroys the connection ("bad response",
 * `Parser.onHeadersComplete` in undici/lib/dispatcher/client-h1.js): its HTTP/1.1 client sends no
 * `Expect: 100-continue` and so expects no 100. Origins send one anyway (unasked, or to the Expect of
 * a client in front of another proxy), and the exchange then failed with 502 "reset".
 *
 * `acceptInterimContinue` gives undici's parser class, once per process, an `onHeadersComplete` that
 * takes a 100 the way undici's own takes a 102 or 103: handed to the request's handler, the header
 * timeout kept running, the parser reset for the final response (llhttp reads no body after a 1xx).
 * Every other status, and every error path (a 100 with no request in flight, a destroyed socket), goes
 * to undici's own method unchanged. The class is not exported; it is reached through the parser of
 * the first connection any pool opens, on the `undici:client:connected` diagnostics channel, which
 * undici publishes before it writes the connection's first request. If that parser is not the llhttp
 * one this was written for (undici 8.13), nothing is changed and a 100 fails the exchange as before.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { subscribe, unsubscribe } from "node:diagnostics_channel"
import { kParser, kQueue, kRunning, kRunningIdx } from "./undiciParts.ts"

const CONNECTED = "undici:client:connected"
const PATCHED = Symbol.for("gatehouse.undici.acceptsContinue")

/** What the replacement reads of undici's request in flight (lib/core/request.js). */
interface InFlightRequest {
  readonly aborted: boolean
  onResponseStart(statusCode: number, headers: Array<Buffer>, resume: () => void, statusText: string): boolean
}

/** What the replacement reads and writes of undici's llhttp parser (lib/dispatcher/client-h1.js). */
interface H1Parser {
  readonly llhttp: unknown
  readonly client: Record<symbol, unknown>
  readonly socket: { readonly destroyed: boolean }
  readonly statusText: string
  readonly timeout: { refresh?: () => void } | null
  readonly resume: () => void
  headers: Array<Buffer>
  headersSize: number
  statusCode: number
  onHeadersComplete(statusCode: number, upgrade: boolean, shouldKeepAlive: boolean): number
}

type Prototype = H1Parser & { [PATCHED]?: true }

/** Installs the replacement on the parser's class; false when the parser is not the expected one. */
const accept100 = (parser: H1Parser): boolean => {
  const proto = Object.getPrototypeOf(parser) as Prototype
  if (proto[PATCHED] === true) return true
  const original = proto.onHeadersComplete
  if (typeof original !== "function" || parser.llhttp === undefined || !Array.isArray(parser.headers)) return false
  proto.onHeadersComplete = function(this: H1Parser, statusCode: number, upgrade: boolean, shouldKeepAlive: boolean): number {
    if (statusCode !== 100) return original.call(this, statusCode, upgrade, shouldKeepAlive)
    const client = this.client
    const request = client[kRunning] === 0 || this.socket.destroyed
      ? undefined
      : (client[kQueue] as Array<InFlightRequest | null>)[client[kRunningIdx] as number]
    if (request == null) return original.call(this, statusCode, upgrade, shouldKeepAlive)
    // as undici's own path for a 102/103: the final response is still awaited under the headers timeout
    this.statusCode = 100
    this.timeout?.refresh?.()
    const headers = this.headers
    this.headers = []
    this.headersSize = 0
    request.onResponseStart(100, headers, this.resume, this.statusText)
    // 1: no body follows; onMessageComplete then resets the parser for the final response
    return request.aborted ? -1 : 1
  }
  proto[PATCHED] = true
  return true
}

/** Scoped: listens for the first connection, patches its parser's class, then stops listening. */
export const acceptInterimContinue: Effect.Effect<void, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const onConnected = (message: unknown) => {
      const parser = (message as { socket?: Record<symbol, unknown> }).socket?.[kParser] as H1Parser | undefined
      if (parser === undefined) return // an HTTP/2 connection (Gatehouse opens none: allowH2 false)
      accept100(parser)
      unsubscribe(CONNECTED, onConnected)
    }
    subscribe(CONNECTED, onConnected)
    return onConnected
  }),
  (onConnected) => Effect.sync(() => { unsubscribe(CONNECTED, onConnected) })
)
