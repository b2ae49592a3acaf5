/**
 * Threat: DNS rebinding against the token-less ("loopback only") control endpoints (/cli/execute,
 * /admin/*). A web page on attacker.example whose name is rebound to 127.0.0.1 is same-origin with
 * the proxy: the browser connects from loopback and may send `Content-Type: application/json` without
 * a preflight. What it cannot forge is the name it connects to, which it writes in `Host`: so without a
 * token, the request must also name a loopback host, as local control-plane servers (Docker, Jupyter,
 * Vite) check. Pure.
 */
import { parseHost } from "./requestTarget.ts"

/** 127.0.0.0/8 as a dotted quad of decimal parts (what a browser writes; other spellings are refused). */
const isIpv4Loopback = (h: string): boolean => {
  if (!h.startsWith("127.")) return false
  let parts = 2 // "127." is the first part; the loop reads the other three
  let digits = 0
  let value = 0
  for (let i = 4; i < h.length; i++) {
    const c = h.charCodeAt(i)
    if (c === 46 /* . */) {
      if (digits === 0) return false
      parts++
      digits = 0
      value = 0
    } else if (c >= 48 && c <= 57) {
      value = value * 10 + c - 48
      if (++digits > 3 || value > 255) return false
    } else return false
  }
  return parts === 4 && digits > 0
}

/**
 * The request names a loopback host: `localhost`, an IPv4 address in 127.0.0.0/8 or `[::1]`, with or
 * without a port. The authority judged is the one the request names (RFC 9112 §3.2.2): an
 * absolute-form target's own, else the Host field. A request without Host (HTTP/1.0; HTTP/1.1
 * requires one) names nothing but the address it connected to, which is loopback for a loopback
 * client, and no browser leaves Host out: it passes. An empty Host names no loopback host: it does not.
 */
export const namesLoopbackHost = (target: string, host: string | undefined): boolean => {
  let authority = host
  if (target.charCodeAt(0) !== 47 /* / */) {
    // absolute-form ("http://127.0.0.1:8080/cli/execute"): the authority runs from "//" to the path
    const slashes = target.indexOf("//")
    if (slashes < 0) return false
    const from = slashes + 2
    let to = from
    while (to < target.length && target.charCodeAt(to) !== 47 && target.charCodeAt(to) !== 63 && target.charCodeAt(to) !== 35) to++
    authority = target.slice(from, to)
  }
  if (authority === undefined) return true
  const parsed = parseHost(authority)
  if (parsed === undefined) return false
  const h = parsed.hostname.endsWith(".") ? parsed.hostname.slice(0, -1) : parsed.hostname
  return h === "localhost" || isIpv4Loopback(h) || (h.includes(":") && isIpv6Loopback(h))
}

/** ::1 in any spelling ("0:0:0:0:0:0:0:1"), as the URL parser writes it canonically. */
const isIpv6Loopback = (h: string): boolean => {
  try {
    return new URL(`http://[${h}]/`).hostname === "[::1]"
  } catch {
    return false
  }
}

/** Why a token-less control request was refused, for the 403's detail. */
export const LOOPBACK_HOST_REQUIRED = "the request must name a loopback host (Host: localhost, 127.0.0.1 or [::1], any port)"
