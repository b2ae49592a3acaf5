/** Cache keys (pure): primary key = scheme://authority + path + query, the same for GET and HEAD. */

/** Default ports are dropped and the authority lowercased, so equivalent targets share an entry. */
export const primaryKey = (scheme: "http" | "https", authority: string, pathAndQuery: string): string => {
  let a = authority.toLowerCase()
  if (a.endsWith(scheme === "https" ? ":443" : ":80")) a = a.slice(0, a.lastIndexOf(":"))
  if (a.endsWith(".")) a = a.slice(0, -1)
  return `${scheme}://${a}${pathAndQuery}`
}

/** "http://a.example.com:8080/x?y" → { host: "a.example.com:8080", hostname: "a.example.com", path: "/x?y" }. */
export const splitKey = (key: string): { readonly host: string; readonly hostname: string; readonly path: string } => {
  const start = key.indexOf("://") + 3
  let end = key.indexOf("/", start)
  if (end < 0) end = key.length
  const host = key.slice(start, end)
  const colon = host.startsWith("[") ? host.indexOf("]:") + 1 : host.lastIndexOf(":")
  return { host, hostname: colon > 0 ? host.slice(0, colon) : host, path: key.slice(end) || "/" }
}

const globToRegExp = (glob: string): RegExp => {
  let re = ""
  for (const c of glob) re += c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\/]/g, "\\$&")
  return new RegExp(`^${re}$`, "i")
}

/**
 * Admin invalidation pattern: a glob over the host ("*.example.com", "api.example.com:8080") or,
 * when it holds a "/", over host + path ("example.com/static/*"). `*` matches any run of characters.
 * Returns a predicate over primary keys, or undefined when the pattern is empty.
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
