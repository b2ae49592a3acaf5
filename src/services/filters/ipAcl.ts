/**
 * IP access control (security.access_control): a client is refused when its address is in `deny`,
 * else admitted only when it is in `allow` (IPv4 and IPv6 CIDRs; IPv4-mapped IPv6 is IPv4).
 * Judged once per connection, at accept.
 */
import { compileCidrList, parseCidr, parseIp } from "../../domain/cidr.ts"
import { Blocked } from "../../domain/errors.ts"
import type { FilterPlugin } from "./FilterPlugin.ts"

const refuse = (ip: string, rule: string, why: string) =>
  new Blocked({ filter: "ip_acl", subject: ip, rule, reason: `client ${ip} ${why}` })

export const ipAcl: FilterPlugin = {
  name: "ip_acl",
  compile: ({ access_control }) => {
    const deny = compileCidrList(access_control.deny)
    const allow = compileCidrList(access_control.allow)
    const everyone = (v: 4 | 6) => access_control.allow.some((c) => parseCidr(c)?.v === v && parseCidr(c)?.prefix === 0)
    const allowsAll = everyone(4) && everyone(6)
    if (deny.size === 0 && allowsAll) return undefined
    return {
      name: "ip_acl",
      connection: (ip) => {
        const addr = parseIp(ip)
        if (addr === undefined) return refuse(ip, "security.access_control (unknown client address)", "has no usable address")
        const denied = deny.match(addr)
        if (denied !== undefined) return refuse(ip, `security.access_control.deny: ${denied}`, `is denied by rule "${denied}"`)
        return allow.match(addr) === undefined
          ? refuse(ip, "security.access_control.allow", "is not in security.access_control.allow")
          : undefined
      }
    }
  }
}
