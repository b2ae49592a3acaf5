/**
 * Cache keys (pure). A primary key names what answers a request, in one of two namespaces that never
 * share an entry:
 *   forward  "forward http://a.example:8080/x?y" — an absolute-form target: the proxy goes to that origin.
 *   reverse  "reverse https://shop.example/x?y" — the client's scheme, its Host (lowercased, exactly as
 *            the router reads it, port included) and the origin-form target: routing maps exactly
 *            these to one configured backend.
 * The same authority can name an origin in one namespace and a route in the other (a forward request
 * for http://h/x goes to h; an origin-form request with `Host: h` goes to whichever rule or default
 * backend matches h), so one shared key would let either poison the other. An absolute-form request
 * naming this proxy's own listener is routed like origin-form with its authority as the Host, and is
 * keyed the same way (reverse). GET and HEAD share keys.
 */
import { parseAuthority, type RequestTarget } from "../requestTarget.ts"

export type KeySpace = "forward" | "reverse"

export const primaryKey = (space: KeySpace, scheme: "http" | "https", authority: string, pathAndQuery: string): string =>
  `${space} ${scheme}://${authority.toLowerCase()}${pathAndQuery}`

/**
 * The primary key of a request, or undefined when it cannot be keyed safely: an origin-form Host that
 * is not a valid authority (a "/" in it would make `Host: a/b` + `/c` the key of `Host: a` + `/b/c`,
 * which routing may send elsewhere). `self`: an absolute-form target naming this listener.
 */
export const requestKey = (
  target: Extract<RequestTarget, { form: "origin" | "absolute" }>,
  hostHeader: string | undefined,
  clientTls: boolean,
  self: boolean
): string | undefined => {
  const scheme = clientTls ? "https" : "http"
  if (target.form === "absolute") {
    return self ? primaryKey("reverse", scheme, target.authority, target.path) : primaryKey("forward", target.scheme, target.authority, target.path)
  }
  const host = hostHeader ?? ""
  if (host !== "" && parseAuthority(host) === undefined) return undefined
  return primaryKey("reverse", scheme, host, target.path)
}

/** "reverse http://a/x" → "http://a/x". */
export const keyUrl = (key: string): string => key.slice(key.indexOf(" ") + 1)

/** Where a key's authority starts and ends ("reverse http://a/x" → 16, 17). */
const authorityOf = (key: string): { readonly start: number; readonly end: number } => {
  const start = key.indexOf("://") + 3
  const end = key.indexOf("/", start)
  return { start, end: end < 0 ? key.length : end }
}

/** "reverse http://a/x" → "reverse http://a" (the namespace, scheme and authority: what a same-origin URI shares). */
export const keyOrigin = (key: string): string => key.slice(0, authorityOf(key).end)

/** "forward http://a.example.com:8080/x?y" → { host: "a.example.com:8080", hostname: "a.example.com", path: "/x?y" }. */
export const splitKey = (key: string): { readonly host: string; readonly hostname: string; readonly path: string } => {
  const { start, end } = authorityOf(key)
  const host = key.slice(start, end)
  const colon = host.startsWith("[") ? host.indexOf("]:") + 1 : host.lastIndexOf(":")
  const name = colon > 0 ? host.slice(0, colon) : host
  return { host, hostname: name.endsWith(".") ? name.slice(0, -1) : name, path: key.slice(end) || "/" }
}

const globToRegExp = (glob: string): RegExp => {
  let re = ""
  for (const c of glob) re += c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\/]/g, "\\$&")
  return new RegExp(`^${re}$`, "i")
}

/**
 * Admin invalidation pattern: a glob over the host ("*.example.com", "api.example.com:8080") or,
 * when it holds a "/", over host + path ("example.com/static/*"). `*` matches any run of characters.
 * It matches keys in both namespaces (forward and reverse). Returns a predicate over primary keys,
 * or undefined when the pattern is empty.
 */
export const keyMatcher = (pattern: string): ((key: string) => boolean) | undefined => {
  const p = pattern.trim().replace(/^https?:\/\//i, "")
  if (p === "") return undefined
  const slash = p.indexOf("/")
  const hostGlob = slash < 0 ? p : p.slice(0, slash)
  const pathRe = slash < 0 ? undefined : globToRegExp(p.slice(slash))
  const hostRe = globToRegExp(hostGlob)
  const withPort = hostGlob.includes(":")
  return (key) => {
    const k = splitKey(key)
    if (!hostRe.test(withPort ? k.host : k.hostname)) return false
    return pathRe === undefined || pathRe.test(k.path)
  }
}

/** Whether a host (as stored in the per-host index) can hold keys the pattern matches. */
export const hostMatcher = (pattern: string): ((host: string) => boolean) | undefined => {
  const p = pattern.trim().replace(/^https?:\/\//i, "")
  if (p === "") return undefined
  const slash = p.indexOf("/")
  const hostGlob = slash < 0 ? p : p.slice(0, slash)
  const re = globToRegExp(hostGlob)
  const withPort = hostGlob.includes(":")
  return (host) => re.test(withPort ? host : splitKey(`http://${host}/`).hostname)
}
