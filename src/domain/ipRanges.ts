/**
 * IP address ranges (pure, built once): CIDR lists for rate-limit exemptions, trusted proxies and the
 * SSRF guard's allow list, and the address classes a forward proxy must not reach by default.
 */
import { isIP } from "node:net"
import { compileCidrList, parseIp } from "./cidr.ts"

export interface IpRanges {
  readonly has: (ip: string) => boolean
  readonly empty: boolean
}

const MEMO_MAX = 4096

/**
 * "10.0.0.0/8", "::1/128", "[::1]" or a bare address → one matcher; IPv4-mapped IPv6 addresses (in
 * rules and in the addresses asked about) count as IPv4. Parsed by cidr.ts, the parser the
 * configuration schema validates these lists with: what `--check-config` accepts, start-up accepts.
 */
export const ipRanges = (cidrs: ReadonlyArray<string>): IpRanges => {
  const list = compileCidrList(cidrs)
  const empty = cidrs.length === 0
  // the same few client addresses ask again and again: remember answers (bounded, started afresh when full)
  let seen = new Map<string, boolean>()
  return {
    empty,
    has: empty
      ? () => false
      : (ip) => {
        const known = seen.get(ip)
        if (known !== undefined) return known
        const addr = parseIp(ip)
        const hit = addr !== undefined && list.match(addr) !== undefined
        if (seen.size >= MEMO_MAX) seen = new Map()
        seen.set(ip, hit)
        return hit
      }
  }
}

/** "::ffff:127.0.0.1" → "127.0.0.1"; other addresses unchanged. */
export const unmapV4 = (ip: string): string =>
  ip.length > 7 && ip.charCodeAt(0) === 58 && ip.toLowerCase().startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip

/**
 * Destinations refused for forward/CONNECT by default (SSRF): loopback, link-local (cloud metadata
 * 169.254.169.254 included), unspecified, and IPv6 forms of those (mapped, NAT64 of metadata).
 */
export const PRIVATE_DESTINATIONS: ReadonlyArray<string> = [
  "127.0.0.0/8",
  "0.0.0.0/8",
  "169.254.0.0/16",
  "::1/128",
  "::/128",
  "fe80::/10",
  "64:ff9b::a9fe:0/112"
]

/** The client behind trusted proxies: the right-most X-Forwarded-For entry that is not a trusted proxy. */
export const clientBehindProxies = (peer: string, xff: string | undefined, trusted: IpRanges): string => {
  if (xff === undefined || trusted.empty || !trusted.has(peer)) return peer
  const parts = xff.split(",")
  for (let i = parts.length - 1; i >= 0; i--) {
    const ip = unmapV4(parts[i]!.trim())
    if (isIP(ip) === 0) return peer
    if (!trusted.has(ip)) return ip
  }
  return peer
}
