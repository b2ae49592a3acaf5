/**
 * IP addresses and CIDR lists (IPv4 and IPv6; IPv4-mapped IPv6 "::ffff:a.b.c.d" is treated as the
 * IPv4 address, in addresses and in rules alike). A list is compiled once into one hash set per
 * prefix length, so a lookup costs one set probe per distinct prefix length in the list. Pure.
 */

export type IpAddress = { readonly v: 4; readonly n: number } | { readonly v: 6; readonly n: bigint }

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

const parseV4 = (s: string): number | undefined => {
  const m = V4.exec(s)
  if (m === null) return undefined
  let n = 0
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!
    if (part.length > 1 && part.charCodeAt(0) === 48) return undefined // no octal-looking "010"
    const o = Number(part)
    if (o > 255) return undefined
    n = n * 256 + o
  }
  return n
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/

const parseGroups = (part: string): Array<number> | undefined => {
  if (part === "") return []
  const out: Array<number> = []
  const pieces = part.split(":")
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!
    if (i === pieces.length - 1 && p.includes(".")) {
      const v4 = parseV4(p)
      if (v4 === undefined) return undefined
      out.push(Math.floor(v4 / 65536), v4 % 65536)
    } else if (HEX_GROUP.test(p)) out.push(parseInt(p, 16))
    else return undefined
  }
  return out
}

const parseV6 = (s: string): bigint | undefined => {
  const zone = s.indexOf("%")
  const body = zone >= 0 ? s.slice(0, zone) : s
  const halves = body.split("::")
  if (halves.length > 2) return undefined
  const left = parseGroups(halves[0]!)
  const right = halves.length === 2 ? parseGroups(halves[1]!) : []
  if (left === undefined || right === undefined) return undefined
  const fill = 8 - left.length - right.length
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined
  let n = 0n
  for (const g of [...left, ...new Array<number>(fill).fill(0), ...right]) n = (n << 16n) | BigInt(g)
  return n
}

const MAPPED_PREFIX = 0xffffn << 32n
const MAPPED_MASK = ((1n << 96n) - 1n) << 32n

/** "10.0.0.1", "::1", "[::1]", "::ffff:10.0.0.1" (→ IPv4), "fe80::1%eth0" → an address; else undefined. */
export const parseIp = (s: string): IpAddress | undefined => {
  const v4 = parseV4(s)
  if (v4 !== undefined) return { v: 4, n: v4 }
  const inner = s.charCodeAt(0) === 91 && s.endsWith("]") ? s.slice(1, -1) : s
  const v6 = parseV6(inner)
  if (v6 === undefined) return undefined
  if ((v6 & MAPPED_MASK) === MAPPED_PREFIX) return { v: 4, n: Number(v6 & 0xffffffffn) }
  return { v: 6, n: v6 }
}

export interface Cidr {
  readonly v: 4 | 6
  readonly prefix: number
  /** The network bits: address >> (bits - prefix). */
  readonly key: number | bigint
  readonly text: string
}

/** "10.0.0.0/8", "2001:db8::/32", "::ffff:10.0.0.0/104" (→ 10.0.0.0/8), "192.0.2.7" (→ /32). */
export const parseCidr = (text: string): Cidr | undefined => {
  const slash = text.indexOf("/")
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash))
  if (addr === undefined) return undefined
  const rawPrefix = slash < 0 ? undefined : text.slice(slash + 1)
  if (rawPrefix !== undefined && !/^\d{1,3}$/.test(rawPrefix)) return undefined
  const writtenAsV6 = text.includes(":")
  let prefix = rawPrefix === undefined ? (writtenAsV6 && addr.v === 6 ? 128 : addr.v === 4 && writtenAsV6 ? 128 : 32) : Number(rawPrefix)
  if (addr.v === 4 && writtenAsV6) {
    // ::ffff:a.b.c.d/p: only the low 32 bits are the IPv4 network
    if (prefix < 96 || prefix > 128) return undefined
    prefix -= 96
  }
  const bits = addr.v === 4 ? 32 : 128
  if (prefix > bits) return undefined
  return { v: addr.v, prefix, key: keyOf(addr, prefix), text }
}

const keyOf = (addr: IpAddress, prefix: number): number | bigint =>
  addr.v === 4 ? (prefix === 0 ? 0 : Math.floor(addr.n / 2 ** (32 - prefix))) : addr.n >> BigInt(128 - prefix)

export interface CidrList {
  readonly size: number
  /** The first rule (most specific prefix first) containing the address, or undefined. */
  readonly match: (addr: IpAddress) => string | undefined
}

export const compileCidrList = (rules: ReadonlyArray<string>): CidrList => {
  const byPrefix = { 4: new Map<number, Map<number | bigint, string>>(), 6: new Map<number, Map<number | bigint, string>>() }
  for (const text of rules) {
    const c = parseCidr(text)
    if (c === undefined) throw new Error(`invalid CIDR: ${text}`)
    const table = byPrefix[c.v]
    let set = table.get(c.prefix)
    if (set === undefined) table.set(c.prefix, set = new Map())
    if (!set.has(c.key)) set.set(c.key, text)
  }
  const prefixes = { 4: [...byPrefix[4].keys()].sort((a, b) => b - a), 6: [...byPrefix[6].keys()].sort((a, b) => b - a) }
  return {
    size: rules.length,
    match: (addr) => {
      const table = byPrefix[addr.v]
      for (const p of prefixes[addr.v]) {
        const hit = table.get(p)!.get(keyOf(addr, p))
        if (hit !== undefined) return hit
      }
      return undefined
    }
  }
}
