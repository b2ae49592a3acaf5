import * as Schema from "effect/Schema"
import { withDefault } from "./withDefault.ts"

/** Strong suites only: TLS 1.3 AEADs, then TLS 1.2 ECDHE + AEAD (forward secrecy). */
export const STRONG_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305"
].join(":")

/** `server.tls`: the listener speaks HTTPS. cert/key are PEM file paths, re-read on SIGHUP. */
export const ListenerTls = Schema.Struct({
  enabled: withDefault(Schema.Boolean, false),
  cert: withDefault(Schema.String, ""),
  key: withDefault(Schema.String, ""),
  min_version: withDefault(Schema.Literals(["TLSv1.2", "TLSv1.3"]), "TLSv1.2"),
  ciphers: withDefault(Schema.String.pipe(Schema.check(Schema.isMinLength(1))), STRONG_CIPHERS)
}).pipe(
  Schema.check(Schema.makeFilter((t) =>
    !t.enabled || (t.cert !== "" && t.key !== "")
      ? undefined
      : { path: [t.cert === "" ? "cert" : "key"], issue: "a PEM file path (server.tls.enabled is true)" }
  ))
)
export type ListenerTls = typeof ListenerTls.Type

/** `security.upstream_tls`: verification of HTTPS upstreams (always on unless a route opts out). */
export const UpstreamTls = Schema.Struct({
  /** PEM file with extra CA certificates, trusted in addition to Node's bundled roots. */
  ca: withDefault(Schema.String, "")
})
export type UpstreamTls = typeof UpstreamTls.Type
