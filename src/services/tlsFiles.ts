/**
 * TLS material read from files at start-up (and on SIGHUP for the listener): a file that cannot be
 * read stops start-up with a ConfigError naming the key.
 */
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { rootCertificates, type SecureContextOptions } from "node:tls"
import type { ListenerTls, UpstreamTls } from "../domain/config/tls.ts"
import { ConfigError } from "../domain/errors.ts"

const readPem = (path: string, key: string) =>
  Effect.try({
    try: () => readFileSync(path, "utf8"),
    catch: (e) =>
      new ConfigError({
        key,
        value: JSON.stringify(path),
        expected: `a readable PEM file (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`,
        source: "tls"
      })
  })

/** Listener: cert/key, TLS 1.2 minimum (1.3 negotiated when the client has it), strong ciphers, server order. */
export const listenerSecureOptions = (tls: ListenerTls): Effect.Effect<SecureContextOptions, ConfigError> =>
  Effect.gen(function*() {
    const cert = yield* readPem(tls.cert, "server.tls.cert")
    const key = yield* readPem(tls.key, "server.tls.key")
    return { cert, key, minVersion: tls.min_version, ciphers: tls.ciphers, honorCipherOrder: true }
  })

/** Upstream: extra CA certificates in addition to Node's bundled roots; verification stays on. */
export const upstreamConnectOptions = (tls: UpstreamTls): Effect.Effect<{ ca?: Array<string> }, ConfigError> =>
  tls.ca === ""
    ? Effect.succeed({})
    : Effect.map(readPem(tls.ca, "security.upstream_tls.ca"), (pem) => ({ ca: [...rootCertificates, pem] }))
