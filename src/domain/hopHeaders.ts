/**
 * RFC 9110 §7.6.1 hop-by-hop fields: removed by every proxy in both directions, together with any
 * field named in Connection. Plain TypeScript over precomputed lowercase sets; one pass per message.
 */

/** Always removed, whatever Connection says. Host/Expect/Max-Forwards are rewritten by the proxy itself. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate"
])

/** Request fields the proxy replaces itself (§7.2 Host, §10.1.1 Expect, §7.6.2 Max-Forwards, §7.6.3 Via, forwarding info). */
const REQUEST_REWRITTEN: ReadonlySet<string> = new Set([
  "host",
  "expect",
  "max-forwards",
  "via",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "forwarded",
  "x-request-id",
  "content-length"
])

/** A Connection value that is exactly one of the connection options (any case), naming no field. */
const isPlainOption = (v: string): boolean => {
  if (v.length !== 10 && v.length !== 5) return false
  const l = v.toLowerCase()
  return l === "keep-alive" || l === "close"
}

/** The lowercase field names listed in Connection header values (§7.6.1). */
export const connectionTokens = (values: ReadonlyArray<string>): ReadonlySet<string> | undefined => {
  let out: Set<string> | undefined
  for (const v of values) {
    if (isPlainOption(v)) continue // the usual "keep-alive" / "close": nothing named, nothing to split
    for (const part of v.split(",")) {
      const t = part.trim().toLowerCase()
      if (t !== "" && t !== "close" && t !== "keep-alive") (out ??= new Set()).add(t)
    }
  }
  return out
}

export interface ForwardingInfo {
  readonly clientIp: string
  /** Scheme the client used to reach the proxy. */
  readonly proto: "http" | "https"
  /** Host the client asked for (Host header or absolute-form authority). */
  readonly host: string
  readonly via: string
  readonly requestId: string
  /** Decremented Max-Forwards to send on, when the request carried one (OPTIONS/TRACE). */
  readonly maxForwards: number | undefined
  /** Exact Content-Length to send, when the body length is known. */
  readonly contentLength: string | undefined
  /** W3C traceparent of the proxy's upstream span (tracing on): replaces the client's. */
  readonly traceparent?: string | undefined
}

const forwardedFor = (ip: string): string => (ip.includes(":") ? `"[${ip}]"` : ip)

/**
 * RFC 7239 §4: a value that is not a token is a quoted-string, `"` and `\` escaped as quoted-pairs.
 * The host is always quoted (a port's ":" is no token character); a valid Host (validate.ts) holds
 * neither character, so the escape is a scan, and a client can never close the string and append a
 * forwarded-element of its own.
 */
const quoted = (v: string): string => {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i)
    if (c === 34 /* " */ || c === 92 /* \ */) return `"${v.replace(/["\\]/g, "\\$&")}"`
  }
  return `"${v}"`
}

/**
 * Build the upstream request header list (flat [name, value, ...]) from the client's raw headers:
 * Host first (the target authority, RFC 9112 §3.2.2; `undefined` when the connection pool writes that
 * same authority itself), then the rest without hop-by-hop and Connection-named fields (duplicates and
 * order kept), then Via, X-Forwarded-*, Forwarded (RFC 7239), X-Request-Id.
 */
export const upstreamRequestHeaders = (raw: ReadonlyArray<string>, targetHost: string | undefined, info: ForwardingInfo): Array<string> => {
  const out: Array<string> = targetHost === undefined ? [] : ["host", targetHost]
  let conn: Array<string> | undefined
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === "connection") (conn ??= []).push(raw[i + 1]!)
  const named = conn === undefined ? undefined : connectionTokens(conn)
  let via: string | undefined
  let xff: string | undefined
  let fwd: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue
    if (info.traceparent !== undefined && lower === "traceparent") continue
    if (REQUEST_REWRITTEN.has(lower)) {
      const v = raw[i + 1]!
      if (lower === "via") via = via === undefined ? v : `${via}, ${v}`
      else if (lower === "x-forwarded-for") xff = xff === undefined ? v : `${xff}, ${v}`
      else if (lower === "forwarded") fwd = fwd === undefined ? v : `${fwd}, ${v}`
      continue
    }
    out.push(name, raw[i + 1]!)
  }
  out.push("via", via === undefined ? info.via : `${via}, ${info.via}`)
  out.push("x-forwarded-for", xff === undefined ? info.clientIp : `${xff}, ${info.clientIp}`)
  out.push("x-forwarded-proto", info.proto)
  out.push("x-forwarded-host", info.host)
  const hop = `for=${forwardedFor(info.clientIp)};host=${quoted(info.host)};proto=${info.proto}`
  out.push("forwarded", fwd === undefined ? hop : `${fwd}, ${hop}`)
  out.push("x-request-id", info.requestId)
  if (info.maxForwards !== undefined) out.push("max-forwards", String(info.maxForwards))
  if (info.contentLength !== undefined) out.push("content-length", info.contentLength)
  if (info.traceparent !== undefined) out.push("traceparent", info.traceparent)
  return out
}

export type HeaderMap = Record<string, string | Array<string> | undefined>

/** A flat header list, [name, value, name, value, ...]; a value may list a field's repeated lines. */
export type HeaderList = Array<string | Array<string>>

/**
 * Response headers for the client: hop-by-hop and Connection-named fields removed, Via appended.
 * A flat list, which `res.writeHead` takes as it is: no object is filled per response (about 1.5–2 %
 * less CPU per request, bench/README.md "Where the rest of Gatehouse's CPU per request goes").
 * `status`, when given: a 1xx or 204 loses its Content-Length (RFC 9110 §8.6: a server MUST NOT send
 * one there; nginx drops it on 204 too). A 304 keeps it (§8.6 allows it).
 */
export const downstreamResponseHeaders = (headers: HeaderMap, via: string, status?: number): HeaderList => {
  const conn = headers["connection"]
  const named = conn === undefined ? undefined : connectionTokens(Array.isArray(conn) ? conn : [conn])
  const noLength = status !== undefined && (status === 204 || status < 200)
  const out: HeaderList = []
  let prior: string | Array<string> | undefined
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue
    if (noLength && name === "content-length") continue
    const v = headers[name]
    if (v === undefined) continue
    if (name === "via") prior = v
    else out.push(name, v)
  }
  out.push("via", prior === undefined ? via : `${Array.isArray(prior) ? prior.join(", ") : prior}, ${via}`)
  return out
}
