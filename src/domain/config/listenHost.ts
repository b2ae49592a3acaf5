/**
 * A listen address (`server.host`, `metrics.host`): what `net.Server.listen({ host })` can take —
 * an IPv4 or IPv6 literal without brackets ("0.0.0.0", "::1") or a DNS host name ("localhost",
 * "proxy.internal"). Anything else ("not a host!", "[::1]", "http://x") would only fail at listen
 * time, so it is refused at decode. Whether a valid name resolves to an address of this machine is
 * checked at start-up and by --check-config (src/services/startupChecks.ts).
 */
import * as Schema from "effect/Schema"
import { isIP } from "node:net"

/** Labels of letters, digits, "-" and "_" (container names), none empty or over 63, not starting or ending in "-". */
const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/

export const isListenHost = (s: string): boolean => {
  if (isIP(s) !== 0) return true
  const name = s.endsWith(".") ? s.slice(0, -1) : s
  const labels = name.split(".")
  // an all-digit last label is a malformed IPv4 address ("300.1.1.1", "10.1"), not a name
  return name.length <= 253 && labels.every((label) => LABEL.test(label)) && !/^\d+$/.test(labels[labels.length - 1]!)
}

export const ListenHost = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) =>
    isListenHost(s) ? undefined : `expected an IP address ("127.0.0.1", "0.0.0.0", "::") or a host name ("localhost")`
  ))
)
