/** RFC 9112 §3.2 request-target forms, classified once per request (pure). */

export type RequestTarget =
  | { readonly form: "origin"; readonly host: string; readonly path: string }
  | { readonly form: "absolute"; readonly scheme: "http" | "https"; readonly authority: string; readonly hostname: string; readonly port: number; readonly path: string }
  | { readonly form: "asterisk" }
  | { readonly form: "invalid"; readonly reason: string }

/** Characters of a reg-name host (RFC 3986 §3.2.2: unreserved, sub-delims, pct-encoded) and of an IP literal. */
const charTable = (chars: string): Uint8Array => {
  const t = new Uint8Array(128)
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1
  return t
}
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
const REG_NAME = charTable(ALNUM + "._~!$&'()*+,;=%-")
const IP_LITERAL = charTable("0123456789ABCDEFabcdef:.")

export interface Authority {
  readonly hostname: string
  readonly port: number | undefined
}

/**
 * host[:port] or [v6]:port → parts; undefined when malformed (port outside 1-65535 or over 5
 * digits). Hostname lowercased, brackets removed. A scan over character tables, not a regex: it
 * runs for every request's Host header.
 */
export const parseAuthority = (authority: string): Authority | undefined => {
  const n = authority.length
  let i = 0
  let hostname: string
  if (n > 0 && authority.charCodeAt(0) === 91 /* [ */) {
    i = 1
    for (let c = authority.charCodeAt(i); i < n && c < 128 && IP_LITERAL[c] === 1; c = authority.charCodeAt(++i));
    if (i === 1 || i >= n || authority.charCodeAt(i) !== 93 /* ] */) return undefined
    hostname = authority.slice(1, i).toLowerCase()
    i++
  } else {
    for (let c = authority.charCodeAt(0); i < n && c < 128 && REG_NAME[c] === 1; c = authority.charCodeAt(++i));
    if (i === 0) return undefined
    hostname = (i === n ? authority : authority.slice(0, i)).toLowerCase()
  }
  if (i === n) return { hostname, port: undefined }
  if (authority.charCodeAt(i) !== 58 /* : */ || n - i - 1 < 1 || n - i - 1 > 5) return undefined
  let port = 0
  for (let j = i + 1; j < n; j++) {
    const d = authority.charCodeAt(j) - 48
    if (d < 0 || d > 9) return undefined
    port = port * 10 + d
  }
  return port < 1 || port > 65535 ? undefined : { hostname, port }
}

export const classifyTarget = (url: string, method: string, hostHeader: string | undefined): RequestTarget => {
  if (url.charCodeAt(0) === 47 /* / */) return { form: "origin", host: hostHeader ?? "", path: url }
  if (url === "*") return method === "OPTIONS" ? { form: "asterisk" } : { form: "invalid", reason: "asterisk-form is only for OPTIONS" }
  const lower = url.slice(0, 8).toLowerCase()
  const scheme = lower.startsWith("http://") ? "http" : lower.startsWith("https://") ? "https" : undefined
  if (scheme === undefined) return { form: "invalid", reason: "request-target must be origin-form or an http(s) absolute URI" }
  const rest = url.slice(scheme.length + 3)
  let end = rest.length
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i)
    if (c === 47 || c === 63 || c === 35) { end = i; break } // / ? #
  }
  const authority = rest.slice(0, end)
  if (authority.includes("@")) return { form: "invalid", reason: "userinfo in the request-target is not allowed (RFC 9110 §4.2.4)" }
  const parsed = parseAuthority(authority)
  if (parsed === undefined || parsed.hostname === "") return { form: "invalid", reason: "malformed authority in the request-target" }
  let path = rest.slice(end)
  const hash = path.indexOf("#")
  if (hash >= 0) path = path.slice(0, hash)
  if (path === "" || path.charCodeAt(0) === 63) path = "/" + path
  const port = parsed.port ?? (scheme === "https" ? 443 : 80)
  const defaultPort = scheme === "https" ? 443 : 80
  return {
    form: "absolute",
    scheme,
    authority: parsed.port === undefined || parsed.port === defaultPort ? bracket(parsed.hostname) : `${bracket(parsed.hostname)}:${port}`,
    hostname: parsed.hostname,
    port,
    path
  }
}

const bracket = (h: string) => (h.includes(":") ? `[${h}]` : h)

/** The hostname part of a Host header (lowercased, port and one trailing dot removed). */
export const hostnameOf = (hostHeader: string): string => {
  const a = parseAuthority(hostHeader)
  const h = a === undefined ? hostHeader.toLowerCase() : a.hostname
  return h.endsWith(".") ? h.slice(0, -1) : h
}
