/**
 * Response compression decisions, pure: Accept-Encoding negotiation (RFC 9110 §12.5.3) and
 * whether a response may be transformed at all (§8.4, RFC 9111 §5.2.2.6 no-transform).
 */
import type { CompressionAlgorithm } from "./config/compression.ts"
import type { HeaderMap } from "./hopHeaders.ts"

export type Coding = CompressionAlgorithm

const headerValue = (v: string | Array<string> | undefined): string | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v.join(", ") : v

/** A qvalue (RFC 9110 §12.4.2): "1", "0.5", "0.001"; anything malformed → undefined (entry ignored). */
const parseQ = (s: string): number | undefined => {
  if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(s)) return undefined
  return Number(s)
}

/** Accept-Encoding parsed (RFC 9110 §12.5.3): q per named coding (x-gzip ≡ gzip) and for `*`. */
interface Accepted {
  readonly named: ReadonlyMap<string, number>
  readonly star: number | undefined
}

const parseAcceptEncoding = (header: string): Accepted => {
  const named = new Map<string, number>()
  let star: number | undefined
  for (const part of header.split(",")) {
    const [rawName, ...params] = part.split(";")
    const name = rawName!.trim().toLowerCase()
    if (name === "") continue
    let q: number | undefined = 1
    for (const p of params) {
      const eq = p.indexOf("=")
      if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === "q") q = parseQ(p.slice(eq + 1).trim())
    }
    if (q === undefined) continue
    const coding = name === "x-gzip" ? "gzip" : name
    if (coding === "*") star = q
    else named.set(coding, Math.max(q, named.get(coding) ?? 0))
  }
  return { named, star }
}

const qOf = (a: Accepted, coding: string): number => a.named.get(coding) ?? a.star ?? 0

/**
 * The coding to use for a response, from the request's Accept-Encoding and the codings offered
 * (in server preference order). Highest q wins; ties go to the server's order; `*` covers codings
 * not named; q=0 forbids. No header, or nothing acceptable → undefined (send identity: a proxy
 * transforming a response never answers 406 for it).
 */
export const negotiateEncoding = (
  acceptEncoding: string | Array<string> | undefined,
  offered: ReadonlyArray<Coding>
): Coding | undefined => {
  const header = headerValue(acceptEncoding)
  if (header === undefined || header.trim() === "" || offered.length === 0) return undefined
  const accepted = parseAcceptEncoding(header)
  let best: Coding | undefined
  let bestQ = 0
  for (const c of offered) {
    const q = qOf(accepted, c)
    if (q > bestQ) {
      best = c
      bestQ = q
    }
  }
  return best
}

/**
 * Whether a stored response's Content-Encoding may be sent to a request with this Accept-Encoding
 * (RFC 9110 §12.5.3): identity always (a proxy never answers 406); no Accept-Encoding at all accepts
 * any coding; otherwise every coding applied must be listed (or covered by `*`) with q > 0.
 */
export const codingAcceptable = (
  acceptEncoding: string | Array<string> | undefined,
  contentEncoding: string | Array<string> | undefined
): boolean => {
  const ce = headerValue(contentEncoding)
  if (ce === undefined) return true
  const header = headerValue(acceptEncoding)
  if (header === undefined) return true
  let accepted: Accepted | undefined
  for (const part of ce.split(",")) {
    const raw = part.trim().toLowerCase()
    if (raw === "" || raw === "identity") continue
    accepted ??= parseAcceptEncoding(header)
    if (qOf(accepted, raw === "x-gzip" ? "gzip" : raw) <= 0) return false
  }
  return true
}

/** A compiled list of media-type patterns: exact "text/html", "text/*", or suffix "*+json". */
export interface TypeMatcher {
  readonly exact: ReadonlySet<string>
  readonly prefixes: ReadonlyArray<string>
  readonly suffixes: ReadonlyArray<string>
}

export const compileTypes = (patterns: ReadonlyArray<string>): TypeMatcher => {
  const exact = new Set<string>()
  const prefixes: Array<string> = []
  const suffixes: Array<string> = []
  for (const p of patterns) {
    if (p.startsWith("*+")) suffixes.push(p.slice(1))
    else if (p.endsWith("/*")) prefixes.push(p.slice(0, -1))
    else exact.add(p)
  }
  return { exact, prefixes, suffixes }
}

export const isCompressibleType = (contentType: string | Array<string> | undefined, m: TypeMatcher): boolean => {
  const ct = headerValue(contentType)
  if (ct === undefined) return false
  const semi = ct.indexOf(";")
  const type = (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase()
  if (m.exact.has(type)) return true
  for (const p of m.prefixes) if (type.startsWith(p)) return true
  for (const s of m.suffixes) if (type.endsWith(s)) return true
  return false
}

const hasToken = (value: string | Array<string> | undefined, token: string): boolean => {
  const v = headerValue(value)
  if (v === undefined) return false
  for (const part of v.split(",")) {
    const t = part.trim().toLowerCase()
    if (t === token || t.startsWith(token + "=")) return true
  }
  return false
}

/**
 * Whether this response may be compressed by the proxy, whatever the client accepts:
 * not 1xx/204/304 (no body), 206 or Content-Range (byte ranges of the identity representation), an
 * already encoded body, Cache-Control: no-transform, a type not listed, or a Content-Length below
 * `minSize`. The same for GET and HEAD: a HEAD response gets the header fields the GET would have
 * (RFC 9110 §9.3.2), with no body to encode.
 */
export const isCompressible = (
  status: number,
  headers: HeaderMap,
  types: TypeMatcher,
  minSize: number
): boolean => {
  if (status < 200 || status === 204 || status === 206 || status === 304) return false
  if (headers["content-range"] !== undefined) return false
  const ce = headerValue(headers["content-encoding"])
  if (ce !== undefined && ce.trim() !== "" && ce.trim().toLowerCase() !== "identity") return false
  if (hasToken(headers["cache-control"], "no-transform")) return false
  if (!isCompressibleType(headers["content-type"], types)) return false
  const cl = headerValue(headers["content-length"])
  if (cl !== undefined) {
    const n = Number(cl)
    if (Number.isFinite(n) && n < minSize) return false
  }
  return true
}

/** Vary with Accept-Encoding added once (RFC 9110 §12.5.5); "*" stays "*". */
export const varyWithAcceptEncoding = (vary: string | Array<string> | undefined): string => {
  const v = headerValue(vary)
  if (v === undefined || v.trim() === "") return "Accept-Encoding"
  if (hasToken(v, "*") || hasToken(v, "accept-encoding")) return v
  return `${v}, Accept-Encoding`
}

/** A strong ETag names the identity bytes; the compressed representation gets the weak form (§8.8.3). */
export const weakenEtag = (etag: string | Array<string> | undefined): string | undefined => {
  const e = headerValue(etag)
  if (e === undefined) return undefined
  return e.startsWith("W/") ? e : `W/${e}`
}

/**
 * The cache's secondary key for Accept-Encoding: the coding Gatehouse would pick for it ("identity"
 * when none), so clients sending different lists that get the same coding share one stored variant
 * ("gzip", "gzip, deflate", "gzip, br;q=0.5" all → "gzip" with zstd/br/gzip offered). A variant the
 * upstream encoded itself can land under a key whose clients do not all accept its coding: the cache
 * checks `codingAcceptable` before serving a stored response.
 */
export const normalizedAcceptEncoding = (
  acceptEncoding: string | Array<string> | undefined,
  offered: ReadonlyArray<Coding>
): string => negotiateEncoding(acceptEncoding, offered) ?? "identity"
