import * as Schema from "effect/Schema"
import { ListenHost } from "./listenHost.ts"
import { ListenerTls } from "./tls.ts"
import { GraceMs, IntBetween, SizeBytes, TimeoutMs } from "./units.ts"

import { withDefault } from "./withDefault.ts"

/** A port to listen on; 0 = any free port. */
export const Port = IntBetween(0, 65535, "a port", " (0 = any free port)")

/** A port to connect to (a CONNECT target): 1-65535, port 0 cannot be dialled. */
export const RemotePort = IntBetween(1, 65535, "a port")

/** Timeouts are 1ms-24d (none can be turned off); the shutdown grace may be 0 (close at once). */
export const Timeouts = Schema.Struct({
  connect: withDefault(TimeoutMs, "5s"),
  read: withDefault(TimeoutMs, "30s"),
  write: withDefault(TimeoutMs, "30s"),
  idle: withDefault(TimeoutMs, "120s"),
  shutdown_grace: withDefault(GraceMs, "30s")
})

export const Limits = Schema.Struct({
  max_url_bytes: withDefault(SizeBytes, 8192),
  max_header_bytes: withDefault(SizeBytes, 16384),
  max_body_bytes: withDefault(SizeBytes, "10MB")
})

export const ConnectSettings = Schema.Struct({
  allowed_ports: withDefault(Schema.Array(RemotePort), [443])
})

export const ServerSection = Schema.Struct({
  /** The address to listen on: an IP literal ("0.0.0.0", "::") or a host name that resolves to this machine. */
  host: withDefault(ListenHost, "127.0.0.1"),
  port: withDefault(Port, 8080),
  timeouts: withDefault(Timeouts, {}),
  limits: withDefault(Limits, {}),
  connect: withDefault(ConnectSettings, {}),
  tls: withDefault(ListenerTls, {})
})
export type ServerSection = typeof ServerSection.Type

