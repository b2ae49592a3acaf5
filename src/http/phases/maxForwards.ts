/**
 * RFC 9110 §7.6.2 Max-Forwards for OPTIONS and TRACE: at 0 the proxy is the final recipient and
 * answers itself; otherwise the value is decremented on the way up.
 */
import type { IncomingMessage, ServerResponse } from "node:http"

export type MaxForwardsDecision =
  | { readonly answer: false; readonly forward: number | undefined }
  | { readonly answer: true }

/** Fields a TRACE echo must not reflect (credentials: RFC 9110 §9.3.8). */
const TRACE_HIDDEN = new Set(["authorization", "proxy-authorization", "cookie"])

/** Nothing to do (most requests): one shared decision. */
const UNTOUCHED: MaxForwardsDecision = { answer: false, forward: undefined }

export const maxForwards = (req: IncomingMessage): MaxForwardsDecision => {
  const method = req.method
  if (method !== "OPTIONS" && method !== "TRACE") return UNTOUCHED
  const header = req.headers["max-forwards"]
  if (header === undefined) return UNTOUCHED
  const raw = Array.isArray(header) ? header[0] ?? "" : header
  // a value beyond 2^53 stays a (huge) number that decrements, instead of rounding up on the way out
  const n = /^\d+$/.test(raw.trim()) ? Math.min(Number(raw.trim()), Number.MAX_SAFE_INTEGER) : NaN
  if (Number.isNaN(n)) return UNTOUCHED
  return n === 0 ? { answer: true } : { answer: false, forward: n - 1 }
}

export const answerAsFinalRecipient = (req: IncomingMessage, res: ServerResponse, via: string): number => {
  if (req.method === "TRACE") {
    let body = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`
    const raw = req.rawHeaders
    for (let i = 0; i < raw.length; i += 2) if (!TRACE_HIDDEN.has(raw[i]!.toLowerCase())) body += `${raw[i]}: ${raw[i + 1]}\r\n`
    body += "\r\n"
    res.writeHead(200, { "content-type": "message/http", "content-length": Buffer.byteLength(body), via })
    res.end(body)
  } else {
    res.writeHead(200, { allow: "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT", "content-length": 0, via })
    res.end()
  }
  return 200
}
