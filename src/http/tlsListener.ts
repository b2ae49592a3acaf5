/**
 * The HTTPS listener (server.tls): the same node:http options on a node:https server, TLS 1.2 minimum
 * (1.3 negotiated whenever the client offers it), strong ciphers only; SIGHUP re-reads cert and key and
 * swaps them in with setSecureContext (new handshakes use the new certificate, live connections stay).
 */
import * as Effect from "effect/Effect"
import { createServer, type Server, type ServerOptions } from "node:http"
import type { SecureContextOptions } from "node:tls"
import type { ListenerTls } from "../domain/config/tls.ts"
import { listenerSecureOptions } from "../services/tlsFiles.ts"

/** A node:http server, or a node:https one (loaded only then: node:tls costs RSS, tlsFiles.ts). */
export const makeServer = (secure: SecureContextOptions | undefined, options: ServerOptions & { readonly handshakeTimeout: number }): Server =>
  secure === undefined
    ? createServer(options)
    : (process.getBuiltinModule("node:https").createServer({ ...options, ...secure }) as unknown as Server)

/** Installs the SIGHUP handler for the listener's lifetime (scoped). */
export const reloadCertificatesOnSighup = (server: Server, tls: ListenerTls) =>
  Effect.gen(function*() {
    if (!tls.enabled) return
    const context = yield* Effect.context<never>()
    const reload = Effect.matchEffect(listenerSecureOptions(tls), {
      onFailure: (e) => Effect.logWarning("TLS certificate reload failed; keeping the current one").pipe(Effect.annotateLogs({ error: e.message })),
      onSuccess: (opts) =>
        Effect.try(() => (server as unknown as { setSecureContext(o: SecureContextOptions): void }).setSecureContext(opts)).pipe(
          Effect.andThen(Effect.logInfo("TLS certificate reloaded").pipe(Effect.annotateLogs({ cert: tls.cert }))),
          Effect.catch((e) => Effect.logWarning("TLS certificate reload failed; keeping the current one").pipe(Effect.annotateLogs({ error: String(e) })))
        )
    })
    const onHup = () => { Effect.runForkWith(context)(reload) }
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("SIGHUP", onHup)),
      () => Effect.sync(() => process.off("SIGHUP", onHup))
    )
  })
