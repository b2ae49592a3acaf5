/**
 * A listen address (`server.host`, `metrics.host`): what `net.Server.listen({ host })` can take —
 * an IPv4 or IPv6 literal without brackets ("0.0.0.0", "::1") or a DNS host name ("localhost",
 * "proxy.internal"). Anything else ("not a host!", "[::1]", "http://x") would only fail at listen
 * time, so it is refused at decode. Whether a valid name resolves to an address of this machine is
 * checked at start-up and by --check-config (src/services/startupChecks.ts).
 */
import * as Schema from "effect/Schema"
import { isIP } from "node:net"
import { type IpAddress, parseIp } from "../cidr.ts"

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

/**
 * Whether listeners on `a` and `b` (addresses as the lookup gave them) on the same port collide with
 * EADDRINUSE under Node's defaults on Linux: the same address (in any spelling, "::ffff:127.0.0.1" is
 * 127.0.0.1), "0.0.0.0" against any IPv4 address, and "::" (dual-stack) against anything.
 */
export const listenAddressesCollide = (a: string, b: string): boolean => {
  const x = parseIp(a)
  const y = parseIp(b)
  if (x === undefined || y === undefined) return a === b
  const anyV6 = (ip: IpAddress) => ip.v === 6 && ip.n === 0n
  const anyV4 = (ip: IpAddress) => ip.v === 4 && ip.n === 0
  if (anyV6(x) || anyV6(y)) return true
  if (x.v !== y.v) return false
  return x.n === y.n || anyV4(x) || anyV4(y)
}
