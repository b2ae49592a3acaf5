import * as Schema from "effect/Schema"
import { ListenerTls } from "./tls.ts"
import { DurationMs, SizeBytes } from "./units.ts"

import { withDefault } from "./withDefault.ts"

export const Port = Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 65535 })))

export const Timeouts = Schema.Struct({
  connect: withDefault(DurationMs, "5s"),
  read: withDefault(DurationMs, "30s"),
  write: withDefault(DurationMs, "30s"),
  idle: withDefault(DurationMs, "120s"),
  shutdown_grace: withDefault(DurationMs, "30s")
})

export const Limits = Schema.Struct({
  max_url_bytes: withDefault(SizeBytes, 8192),
  max_header_bytes: withDefault(SizeBytes, 16384),
  max_body_bytes: withDefault(SizeBytes, "10MB")
})

export const ConnectSettings = Schema.Struct({
  allowed_ports: withDefault(Schema.Array(Port), [443])
})

export const ServerSection = Schema.Struct({
  host: withDefault(Schema.String.pipe(Schema.check(Schema.isMinLength(1))), "127.0.0.1"),
  port: withDefault(Port, 8080),
  timeouts: withDefault(Timeouts, {}),
  limits: withDefault(Limits, {}),
  connect: withDefault(ConnectSettings, {}),
  tls: withDefault(ListenerTls, {})
})
export type ServerSection = typeof ServerSection.Type

