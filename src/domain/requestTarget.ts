/** RFC 9112 §3.2 request-target forms, classified once per request (pure). */

export type RequestTarget =
  | { readonly form: "origin"; readonly host: string; readonly path: string }
  | { readonly form: "absolute"; readonly scheme: "http" | "https"; readonly authority: string; readonly hostname: string; readonly port: number; readonly path: string }
  | { readonly form: "asterisk" }
  | { readonly form: "invalid"; readonly reason: string }

const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::(\d{1,5}))?$/

export interface Authority {
  readonly hostname: string
  readonly port: number | undefined
}

/** host[:port] or [v6]:port → parts; undefined when malformed. Hostname lowercased, brackets removed. */
export const parseAuthority = (authority: string): Authority | undefined => {
  const m = AUTHORITY.exec(authority)
  if (m === null) return undefined
  const host = m[1]!
  const port = m[2] === undefined ? undefined : Number(m[2])
  if (port !== undefined && (port < 1 || port > 65535)) return undefined
  const hostname = (host.startsWith("[") ? host.slice(1, -1) : host).toLowerCase()
  return { hostname, port }
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
