/** RFC 9112 §3.2 request-target forms, classified once per request (pure). */

export type RequestTarget =
  | { readonly form: "origin"; readonly host: string; readonly path: string }
  | { readonly form: "absolute"; readonly scheme: "http" | "https"; readonly authority: string; readonly hostname: string; readonly port: number; readonly path: string }
  | { readonly form: "asterisk" }
  | { readonly form: "invalid"; readonly reason: string }

/** Characters of a reg-name host (RFC 3986 §3.2.2: unreserved, sub-delims; pct-encoded is checked apart) and of an IP literal. */
const charTable = (chars: string): Uint8Array => {
  const t = new Uint8Array(128)
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1
  return t
}
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
const REG_NAME = charTable(ALNUM + "._~!$&'()*+,;=-")
const IP_LITERAL = charTable("0123456789ABCDEFabcdef:.")
const HEX = charTable("0123456789ABCDEFabcdef")

export interface Authority {
  readonly hostname: string
  readonly port: number | undefined
}

/** Where the host of an authority ends (after the "]" of an IP literal), or -1 when it is not a uri-host. */
const hostEnd = (a: string): number => {
  const n = a.length
  let i = 0
  if (n > 0 && a.charCodeAt(0) === 91 /* [ */) {
    i = 1
    for (let c = a.charCodeAt(i); i < n && c < 128 && IP_LITERAL[c] === 1; c = a.charCodeAt(++i));
    return i === 1 || i >= n || a.charCodeAt(i) !== 93 /* ] */ ? -1 : i + 1
  }
  while (i < n) {
    const c = a.charCodeAt(i)
    if (c === 37 /* % */) {
      // pct-encoded = "%" HEXDIG HEXDIG (a lone "%" is not a host character)
      const h1 = a.charCodeAt(i + 1)
      const h2 = a.charCodeAt(i + 2)
      if (!(h1 < 128 && HEX[h1] === 1 && h2 < 128 && HEX[h2] === 1)) return -1
      i += 3
    } else if (c < 128 && REG_NAME[c] === 1) i++
    else break
  }
  return i === 0 ? -1 : i
}

/** The port after the host (`a` from `i`): 0 when there is none, -1 when malformed (not 1-65535, over 5 digits). */
const portAt = (a: string, i: number): number => {
  const n = a.length
  if (i === n) return 0
  if (a.charCodeAt(i) !== 58 /* : */ || n - i - 1 < 1 || n - i - 1 > 5) return -1
  let port = 0
  for (let j = i + 1; j < n; j++) {
    const d = a.charCodeAt(j) - 48
    if (d < 0 || d > 9) return -1
    port = port * 10 + d
  }
  return port < 1 || port > 65535 ? -1 : port
}

/**
 * host[:port] or [v6]:port → parts; undefined when malformed (port outside 1-65535 or over 5
 * digits). Hostname lowercased, brackets removed. A scan over character tables, not a regex: it
 * runs for every request's Host header.
 */
export const parseAuthority = (authority: string): Authority | undefined => {
  const end = hostEnd(authority)
  if (end < 0) return undefined
  const port = portAt(authority, end)
  if (port < 0) return undefined
  const hostname = authority.charCodeAt(0) === 91
    ? authority.slice(1, end - 1).toLowerCase()
    : (end === authority.length ? authority : authority.slice(0, end)).toLowerCase()
  return { hostname, port: port === 0 ? undefined : port }
}

/**
 * RFC 9112 §3.2: a Host field value is `uri-host [ ":" port ]`, or empty; anything else (a "/", "@",
 * a space, a quote, a port that is not a number in 1-65535) gets 400. An empty port ("host:") is
 * in the grammar (RFC 3986 `port = *DIGIT`, the scheme's default, RFC 9110 §4.2.3). Checked without allocating.
 */
export const isValidHost = (host: string): boolean => {
  if (host === "") return true
  // Host is a singleton field (RFC 9110 §5.3, §7.2): "a.com,b.com" is a list in one value, which
  // reg-name's sub-delims let through but X-Forwarded-Host readers split (a framework would take
  // "a.com", a name the domain filter never saw)
  if (host.indexOf(",") >= 0) return false
  const end = hostEnd(host)
  return end >= 0 && (portAt(host, end) >= 0 || (end === host.length - 1 && host.charCodeAt(end) === 58 /* : */))
}

/** Segment [start, end) of `p` is a dot-segment, a dot written "." or "%2e" in any case: 1 for ".", 2 for "..", else 0. */
const dotSegment = (p: string, start: number, end: number): number => {
  let dots = 0
  for (let i = start; i < end;) {
    const c = p.charCodeAt(i)
    if (c === 46 /* . */) i++
    else if (c === 37 /* % */ && i + 3 <= end && p.charCodeAt(i + 1) === 50 /* 2 */ && (p.charCodeAt(i + 2) | 32) === 101 /* e */) i += 3
    else return 0
    if (++dots > 2) return 0
  }
  return dots
}

/** The path part of an origin-form target ends at "?" (or a stray "#"). */
const pathEnd = (p: string): number => {
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i)
    if (c === 63 || c === 35) return i
  }
  return p.length
}

/**
 * RFC 3986 §5.2.4 remove_dot_segments over the path of an origin-form target ("/a/./b/../c?q" →
 * "/a/c?q"; the query is kept as it is), with "%2e" taken as "." as the origin would decode it
 * (§6.2.2.2). `undefined` when a ".." would climb above the root ("/../x", "/a/../../x"): the
 * algorithm would drop it silently, nginx answers 400, and so does Gatehouse (a backend's base path
 * is prepended to this path: a climbing path is an attempt to leave it). A path with no segment
 * starting with "." or "%" (nearly all) comes back as it is after one scan up to the query. `null`
 * when the path holds a "\\", or a dot-segment a backend could find that the "/" split does not (see
 * BACKSLASH).
 */
export const removeDotSegments = (path: string): string | undefined | null => {
  const n = path.length
  let dotted = false
  let hiding = false
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i)
    if (c === 47 /* / */) {
      const next = path.charCodeAt(i + 1)
      if (next === 46 /* . */ || next === 37 /* % */) dotted = true
    } else if (c === 37 /* % */ || c === 59 /* ; */) hiding = true
    else if (c === 63 /* ? */ || c === 35 /* # */) break
    else if (c === 92 /* \ */) return null
  }
  if (hiding && hidesDotSegment(path)) return null
  return dotted && hasDotSegment(path) ? rewriteDotSegments(path) : path
}

/** "%2f", "%5c" (any case): what a decoding backend reads as a separator. */
const ENCODED_SEPARATOR = /%2f|%5c/gi

/**
 * A dot-segment the "/" split does not see but a backend may: behind an encoded separator
 * ("/..%2f..%2fsecret", "/%2e%2e%5csecret": decoded, they climb) or a path parameter ("/..;/secret":
 * Tomcat and Spring read "..;" as ".."). nginx decodes before it removes dot-segments and answers
 * 400 for these; so does Gatehouse, rather than guess how the backend decodes. (Rare: only for a path
 * holding "%" or ";".)
 */
const hidesDotSegment = (path: string): boolean => {
  const part = path.slice(0, pathEnd(path))
  const dots = (segments: Array<string>) => {
    let count = 0
    for (const s of segments) if (dotSegment(s, 0, s.length) > 0) count++
    return count
  }
  const plain = part.split("/")
  const opened = part.replace(ENCODED_SEPARATOR, "/").split("/").map((s) => {
    const semi = s.indexOf(";")
    return semi < 0 ? s : s.slice(0, semi)
  })
  return dots(opened) > dots(plain)
}

/** Some segment of the path is a dot-segment ("/.well-known/x" has none). */
const hasDotSegment = (path: string): boolean => {
  const end = pathEnd(path)
  for (let i = 1, seg = 1; i <= end; i++) {
    if (i < end && path.charCodeAt(i) !== 47) continue
    if (dotSegment(path, seg, i) > 0) return true
    seg = i + 1
  }
  return false
}

/** The rare case: rebuilt segment by segment. */
const rewriteDotSegments = (path: string): string | undefined => {
  const end = pathEnd(path)
  const out: Array<string> = []
  for (let i = 1, seg = 1; i <= end; i++) {
    if (i < end && path.charCodeAt(i) !== 47) continue
    const dots = dotSegment(path, seg, i)
    if (dots === 0) out.push(path.slice(seg, i))
    else if (dots === 2 && out.pop() === undefined) return undefined
    // a dot-segment at the end leaves a directory: "/a/b/.." → "/a/"
    if (dots > 0 && i === end) out.push("")
    seg = i + 1
  }
  return "/" + out.join("/") + path.slice(end)
}

const INVALID_HOST: RequestTarget = { form: "invalid", reason: "invalid Host header: expected host[:port] (RFC 9112 §3.2)" }
/** Why a path that `removeDotSegments` refuses gets 400. */
export const CLIMBS_ABOVE_ROOT_REASON = "request path climbs above the root with \"..\" segments (RFC 3986 §5.2.4)"
const CLIMBS_ABOVE_ROOT: RequestTarget = { form: "invalid", reason: CLIMBS_ABOVE_ROOT_REASON }
/**
 * "\" is no path character (RFC 3986 §3.3), though Node's parser lets it through; a backend that reads
 * it as "/" (IIS, some frameworks) would see "/..\x" climb where "/.." segments were removed. The same
 * for a dot-segment behind "%2f", "%5c" or a ";" parameter (hidesDotSegment).
 */
export const BACKSLASH_REASON = "request path holds a \"\\\", or a \"..\" behind %2f, %5c or \";\" (RFC 3986 §3.3)"
const BACKSLASH: RequestTarget = { form: "invalid", reason: BACKSLASH_REASON }

/**
 * Origin-form: the Host is checked (RFC 9112 §3.2) and the path's dot-segments removed, once, before
 * anything reads it (control endpoints, filters, cache key, route matching, the backend's base path).
 * Absolute-form: the path is the client's URI for another origin and is left as sent.
 */
export const classifyTarget = (url: string, method: string, hostHeader: string | undefined): RequestTarget => {
  if (url.charCodeAt(0) === 47 /* / */) {
    const host = hostHeader ?? ""
    if (!isValidHost(host)) return INVALID_HOST
    const path = removeDotSegments(url)
    return path === undefined ? CLIMBS_ABOVE_ROOT : path === null ? BACKSLASH : { form: "origin", host, path }
  }
  if (url === "*") {
    if (method !== "OPTIONS") return { form: "invalid", reason: "asterisk-form is only for OPTIONS" }
    return isValidHost(hostHeader ?? "") ? { form: "asterisk" } : INVALID_HOST
  }
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

/**
 * A Host field value's authority: `parseAuthority`, with the empty port the grammar allows
 * ("host:", RFC 3986 `port = *DIGIT`: the scheme's default) read as no port.
 */
export const parseHost = (host: string): Authority | undefined => {
  const a = parseAuthority(host)
  if (a !== undefined || !host.endsWith(":")) return a
  const bare = parseAuthority(host.slice(0, -1))
  return bare !== undefined && bare.port === undefined ? bare : undefined
}

/** The hostname part of a Host header (lowercased, port and one trailing dot removed). */
export const hostnameOf = (hostHeader: string): string => {
  const a = parseHost(hostHeader)
  const h = a === undefined ? hostHeader.toLowerCase() : a.hostname
  return h.endsWith(".") ? h.slice(0, -1) : h
}
