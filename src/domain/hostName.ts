/**
 * Host normalisation for policy decisions (domain filter): one canonical spelling per host, so
 * "EXAMPLE.com.", "mal%69cious.com", "Bücher.de", "0x7f.1" or "[::ffff:10.0.0.1]" cannot slip past a
 * rule written as "example.com", "malicious.com", "xn--bcher-kva.de", "127.0.0.1" or "10.0.0.1".
 * Follows the WHATWG host parser (what undici and `new URL` do with the same name). Pure.
 */
import { domainToASCII } from "node:url"

/** A dotted-quad IPv4 address already in canonical form (no leading zeros, each part ≤ 255). */
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

/** Plain lowercase LDH names whose last label starts with a letter (so cannot be an IPv4 number form). */
const PLAIN = /^[a-z0-9-]+(?:\.[a-z0-9-]+)*\.*$/

const stripDots = (h: string): string => {
  let end = h.length
  while (end > 0 && h.charCodeAt(end - 1) === 46) end--
  return end === h.length ? h : h.slice(0, end)
}

const lastLabelStartsWithLetter = (h: string): boolean => {
  const i = h.lastIndexOf(".")
  const c = h.charCodeAt(i + 1)
  return c >= 97 && c <= 122
}

/** "::ffff:a.b.c.d" in any spelling → "a.b.c.d"; other IPv6 → the compressed lowercase form. */
export const normaliseIpv6 = (literal: string): string | undefined => {
  let canonical: string
  try {
    canonical = new URL(`http://[${literal}]/`).hostname.slice(1, -1)
  } catch {
    return undefined
  }
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical)
  if (m === null) return canonical
  const hi = parseInt(m[1]!, 16)
  const lo = parseInt(m[2]!, 16)
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}

/**
 * The canonical host for matching: lowercase, no trailing dot, IDN as punycode (A-labels),
 * percent-escapes decoded, IPv4 number forms as dotted quads, IPv6 without brackets (IPv4-mapped
 * as IPv4). `undefined` when the name is not a valid host at all.
 */
export const normaliseHost = (raw: string): string | undefined => {
  if (raw === "") return undefined
  const lower = raw.toLowerCase()
  if (PLAIN.test(lower)) {
    const h = stripDots(lower)
    if (h !== "" && lastLabelStartsWithLetter(h)) return h
  }
  if (CANONICAL_IPV4.test(lower)) return lower
  if (lower.charCodeAt(0) === 91 /* [ */) return lower.endsWith("]") ? normaliseIpv6(lower.slice(1, -1)) : undefined
  if (lower.includes(":")) return normaliseIpv6(lower)
  const ascii = domainToASCII(lower)
  if (ascii === "") return undefined
  const h = stripDots(ascii)
  return h === "" ? undefined : h
}
