/** RFC 9211 Cache-Status field values for this cache (identifier "gatehouse"). */
export const CACHE_NAME = "gatehouse"

export const hitStatus = (ttlMs: number, detail?: string): string =>
  `${CACHE_NAME}; hit; ttl=${Math.trunc(ttlMs / 1000)}${detail === undefined ? "" : `; detail=${detail}`}`

export type Forward = "bypass" | "method" | "uri-miss" | "vary-miss" | "miss" | "request" | "stale"

export interface ForwardStatus {
  readonly fwd: Forward
  readonly fwdStatus?: number
  /** RFC 9211 §2.5: said only when known to be true as the head goes out (storable, Content-Length within max_object_size). */
  readonly stored?: boolean
  readonly ttlMs?: number
  /** true: collapsed with another request and reused; false: collapsing was tried but the result was not reusable. */
  readonly collapsed?: boolean
  readonly detail?: string
}

export const forwardStatus = (s: ForwardStatus): string => {
  let out = `${CACHE_NAME}; fwd=${s.fwd}`
  if (s.fwdStatus !== undefined) out += `; fwd-status=${s.fwdStatus}`
  if (s.stored === true) out += "; stored"
  if (s.ttlMs !== undefined) out += `; ttl=${Math.trunc(s.ttlMs / 1000)}`
  if (s.collapsed !== undefined) out += s.collapsed ? "; collapsed" : "; collapsed=?0"
  if (s.detail !== undefined) out += `; detail=${s.detail}`
  return out
}
