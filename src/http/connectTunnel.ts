/**
 * CONNECT tunnels (RFC 9110 §9.3.6). The decision (authority, allowed port, draining) is Effect code;
 * once established, bytes flow both ways as Effect Streams with backpressure (`socketBridge.ts`).
 * Each direction ends its writable when its readable ends, so a half-close on one side reaches the
 * other while the reverse direction keeps flowing. The tunnel is torn down when both
 * directions are done, on error, on idle timeout, or on interruption (client gone, shutdown).
 *
 * A CONNECT pipelined behind a request whose response is still going out is answered after it
 * (RFC 9112 §9.3.2), its 200 or its refusal alike, as an Upgrade is (connectionHandBack.ts).
 * A client whose connection resets while the target is dialled (its 'close' interrupts this fiber,
 * Listener.ts) stops the dial at once, logged as a client that left (tunnelExit.ts). Its FIN alone
 * does not: the connection allows half-open, and a CONNECT client may send its payload and end its
 * side before the 200 (tunnels relay half-closes), so the FIN ends the tunnel's upload once the
 * tunnel is up, not the tunnel.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { IncomingMessage } from "node:http"
import { connect as netConnect, type Socket } from "node:net"
import type { Duplex } from "node:stream"
import { BadRequest, Forbidden, UpstreamError, type RequestError } from "../domain/errors.ts"
import { newRequestContext } from "../domain/RequestContext.ts"
import { parseAuthority } from "../domain/requestTarget.ts"
import { classifyUpstreamError } from "../domain/upstreamFailure.ts"
import { type AccessLog, accessEntry } from "../services/AccessLog.ts"
import { type Filter, filterRequest } from "../services/Filter.ts"
import type { LoadedConfig } from "../services/Config.ts"
import type { Lifecycle } from "../services/Lifecycle.ts"
import type { DestinationGuard } from "../services/DestinationGuard.ts"
import type { ProxyAuth } from "../services/ProxyAuth.ts"
import type { RateLimiter } from "../services/RateLimiter.ts"
import type { MetricsHooks } from "../services/Metrics.ts"
import type { Reclaimer } from "../services/Reclaimer.ts"
import { previousResponseDone } from "./connectionHandBack.ts"
import { bridgeSockets } from "./socketBridge.ts"
import { bytesRead, bytesWritten, recordTunnelBytes, settleTunnel } from "./tunnelExit.ts"

export interface TunnelDeps {
  readonly config: LoadedConfig
  readonly accessLog: AccessLog["Service"]
  readonly lifecycle: Lifecycle["Service"]
  readonly requestId: (incoming: string | undefined) => string
  readonly clientIp: (sock: Duplex) => string
  readonly filter: Filter["Service"]
  readonly proxyAuth: ProxyAuth["Service"]
  readonly rateLimiter: RateLimiter["Service"]
  readonly destinations: DestinationGuard["Service"]
  readonly metrics: MetricsHooks
  readonly reclaimer: Reclaimer["Service"]
}

const ESTABLISHED = "HTTP/1.1 200 Connection Established\r\nvia: 1.1 gatehouse\r\n\r\n"

/** Open the upstream TCP connection; fails with a typed UpstreamError (timeout → 504, else 502). */
const dial = (hostname: string, port: number, timeoutMs: number, target: string) =>
  Effect.callback<Socket, UpstreamError>((resume) => {
    const sock = netConnect({ host: hostname, port, allowHalfOpen: true, noDelay: true })
    const fail = (cause: unknown, reason?: "timeout") => {
      sock.destroy()
      resume(Effect.fail(new UpstreamError({ reason: reason ?? classifyUpstreamError(cause), upstream: target, responseStarted: false, cause })))
    }
    const onTimeout = () => fail(new Error("connect timeout"), "timeout")
    sock.setTimeout(timeoutMs, onTimeout)
    sock.once("error", fail)
    sock.once("connect", () => {
      sock.setTimeout(0)
      sock.removeListener("timeout", onTimeout)
      sock.removeListener("error", fail)
      sock.on("error", () => {}) // later errors surface through the tunnel Streams
      resume(Effect.succeed(sock))
    })
    return Effect.sync(() => sock.destroy())
  })

export const connectTunnel = (deps: TunnelDeps, req: IncomingMessage, client: Duplex, head: Buffer): Effect.Effect<void> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeNanos
    const target = req.url ?? ""
    const rid = req.headers["x-request-id"]
    const ctx = newRequestContext(deps.requestId(typeof rid === "string" ? rid : undefined), start, deps.clientIp(client), "CONNECT", target)
    ctx.kind = "connect"
    ctx.upstream = target
    // what the connection read up to the CONNECT head (earlier requests, the head itself) is not tunnel
    // payload; the early tunnel bytes after it are in `head` (read now, before any wait)
    const readFrom = bytesRead(client) - head.length
    let writtenFrom = 0
    let established = false
    let idled = false
    const { server } = deps.config

    const open = Effect.gen(function*() {
      // RFC 9112 §9.3.2: the response to a request pipelined before this one goes out first
      yield* previousResponseDone(client)
      yield* deps.filter.connection(client, ctx.clientIp)
      const authority = parseAuthority(target)
      if (authority === undefined || authority.port === undefined) {
        return yield* new BadRequest({ reason: "CONNECT needs an authority-form target host:port (RFC 9110 §9.3.6)" })
      }
      if (!server.connect.allowed_ports.includes(authority.port)) {
        return yield* new Forbidden({ reason: `CONNECT to port ${authority.port} is not allowed`, rule: "server.connect.allowed_ports" })
      }
      // domain filter: refused before anything is dialled
      yield* deps.filter.request(filterRequest("connect", authority.hostname, authority.port, ctx.clientIp, "CONNECT"))
      const xff = req.headers["x-forwarded-for"]
      yield* deps.rateLimiter.admit(ctx.clientIp, Array.isArray(xff) ? xff.join(", ") : xff)
      // proxy auth (407), after the rate limit so failed attempts spend the client's budget:
      // Proxy-Authorization is consumed here, never sent anywhere
      if (deps.proxyAuth.enabled) yield* deps.proxyAuth.check(req.headers["proxy-authorization"])
      // SSRF guard: resolve once, check, and dial the checked address (never the name again)
      const address = yield* deps.destinations.resolve(authority.hostname, authority.port)
      // interruptible: a client that leaves while the target is dialled stops the dial (its socket destroyed)
      const upstream = yield* Effect.acquireRelease(
        dial(address, authority.port, server.timeouts.connect, target),
        (s) => Effect.sync(() => s.destroy()),
        { interruptible: true }
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
      client.write(ESTABLISHED)
      // (the count includes writes still queued: from here on it is the tunnel's)
      writtenFrom = bytesWritten(client)
      established = true
      ctx.status = 200
      if (head.length > 0) upstream.write(head)
      yield* bridgeSockets(client, upstream, target, server.timeouts.idle, deps.reclaimer.relayed, () => { idled = true })
    })

    const report = (exit: Exit.Exit<void, RequestError>) =>
      Effect.gen(function*() {
        const error = settleTunnel(exit, ctx, client, established, idled)
        if (error !== undefined) deps.metrics.refused(error)
        const end = yield* Clock.currentTimeNanos
        // a tunnel's bytes are its payload each way, as a request's are its bodies (a refusal's
        // problem body is counted by settleTunnel)
        if (established) recordTunnelBytes(ctx, client, readFrom, writtenFrom)
        deps.metrics.request(ctx, end - start)
        yield* deps.accessLog.write(accessEntry(ctx, end - start))
      })
    yield* Effect.scoped(open).pipe(Effect.onExit(report))
  }).pipe(Effect.catchCause(() => Effect.void))
