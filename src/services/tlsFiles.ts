/**
 * TLS material read from files at start-up (and on SIGHUP for the listener): a file that cannot be
 * read, is not PEM, or a key that does not match its certificate stops start-up (and --check-config)
 * with a ConfigError naming the key, never a stack trace.
 */
import * as Effect from "effect/Effect"
import { X509Certificate } from "node:crypto"
import { readFileSync } from "node:fs"
import type { SecureContextOptions } from "node:tls"
import type { ListenerTls, UpstreamTls } from "../domain/config/tls.ts"
import { ConfigError } from "../domain/errors.ts"

/**
 * node:tls, loaded when a TLS file is configured: loading it (with node:https) cost 2.3 MiB of
 * Gatehouse's idle RSS (4.4 MiB in a bare Node 24 process), which a proxy without TLS files need not
 * pay (undici loads it itself for an HTTPS upstream).
 */
const nodeTls = () => process.getBuiltinModule("node:tls")

const firstLine = (e: unknown) => (e instanceof Error ? e.message.split("\n")[0] : String(e))

const readPem = (path: string, key: string) =>
  Effect.try({
    try: () => readFileSync(path, "utf8"),
    catch: (e) =>
      new ConfigError({
        key,
        value: JSON.stringify(path),
        expected: `a readable PEM file (${firstLine(e)})`,
        source: "tls"
      })
  })

/** Listener: cert/key, TLS 1.2 minimum (1.3 negotiated when the client has it), strong ciphers, server order. */
export const listenerSecureOptions = (tls: ListenerTls): Effect.Effect<SecureContextOptions, ConfigError> =>
  Effect.gen(function*() {
    const cert = yield* readPem(tls.cert, "server.tls.cert")
    const key = yield* readPem(tls.key, "server.tls.key")
    const options: SecureContextOptions = { cert, key, minVersion: tls.min_version, ciphers: tls.ciphers, honorCipherOrder: true }
    // a garbage PEM, a key for another certificate or an unknown cipher list fails here, not in node:https
    yield* Effect.try({
      try: () => nodeTls().createSecureContext(options),
      catch: (e) =>
        new ConfigError({
          key: "server.tls",
          value: JSON.stringify({ cert: tls.cert, key: tls.key }),
          expected: `a PEM certificate with its matching private key and a valid cipher list (${firstLine(e)})`,
          source: "tls"
        })
    })
    return options
  })

/** Upstream: extra CA certificates in addition to Node's bundled roots; verification stays on. */
export const upstreamConnectOptions = (tls: UpstreamTls): Effect.Effect<{ ca?: Array<string> }, ConfigError> =>
  tls.ca === ""
    ? Effect.succeed({})
    : Effect.flatMap(readPem(tls.ca, "security.upstream_tls.ca"), (pem) =>
      Effect.try({
        // node:tls ignores a CA bundle that is not PEM; parse it so a wrong file is reported
        try: () => {
          new X509Certificate(pem)
          return { ca: [...nodeTls().rootCertificates, pem] }
        },
        catch: (e) =>
          new ConfigError({ key: "security.upstream_tls.ca", value: JSON.stringify(tls.ca), expected: `PEM CA certificates (${firstLine(e)})`, source: "tls" })
      }))

/** For --check-config: read and parse every TLS file the configuration names. */
export const checkTlsFiles = (listener: ListenerTls, upstream: UpstreamTls): Effect.Effect<void, ConfigError> =>
  Effect.andThen(listener.enabled ? Effect.asVoid(listenerSecureOptions(listener)) : Effect.void, upstreamConnectOptions(upstream))
