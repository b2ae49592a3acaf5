/**
 * Which Upgrade offers (RFC 9110 §7.8) Gatehouse tunnels, and the plain request an offer it does not
 * tunnel becomes. Upgrade is hop-by-hop: a proxy may drop an offer and relay the request without it,
 * as the origin itself may ignore it. Not tunnelled:
 * - `h2c` (HTTP/2 over cleartext by upgrade, RFC 7540 §3.2, deprecated by RFC 9113 §3.1): after the 101
 *   both sides speak HTTP/2, which a byte tunnel would carry past every HTTP-level check and which
 *   Gatehouse cannot speak (its upstreams are HTTP/1.1); dropped like nginx does, with its
 *   `HTTP2-Settings`, so `curl --http2 http://…` gets its answer over HTTP/1.1.
 * - any offer in an HTTP/1.0 request, which a server MUST ignore (§7.8);
 * - a request with content (`Content-Length` other than 0, or `Transfer-Encoding`): Node's parser hands
 *   an upgrade request over at the end of its head, its content unread, and the content has to reach
 *   the origin before the switch. Served as a plain request, it is read, limited and relayed like any.
 * The remaining protocols (e.g. `websocket`) are offered to the origin.
 */
import type { IncomingMessage } from "node:http"

const NOT_TUNNELLED: ReadonlySet<string> = new Set(["h2c"])
/** Removed from the rebuilt head, and their tokens from Connection. */
const OFFER_FIELDS: ReadonlySet<string> = new Set(["upgrade", "http2-settings"])

const hasContent = (req: IncomingMessage): boolean => {
  const length = req.headers["content-length"]
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0")
}

/** The Upgrade value to offer the origin; `undefined` when the request goes on as a plain one. */
export const tunnelledProtocols = (req: IncomingMessage): string | undefined => {
  if (req.httpVersionMinor === 0 || hasContent(req)) return undefined
  let out: string | undefined
  for (const part of (req.headers.upgrade ?? "").split(",")) {
    const p = part.trim()
    if (p === "" || NOT_TUNNELLED.has(p.toLowerCase())) continue
    out = out === undefined ? p : `${out}, ${p}`
  }
  return out
}

/**
 * The request's head as it came, without the offer: no `Upgrade` or `HTTP2-Settings` field, and
 * `upgrade`/`http2-settings` taken out of Connection. Names, values, order and duplicates are kept
 * (header bytes are latin1 strings in Node, so they are written back byte for byte); Node's parser
 * reads it again, as strictly as the first time.
 */
export const plainRequestHead = (req: IncomingMessage): Buffer => {
  let head = `${req.method ?? "GET"} ${req.url ?? "/"} HTTP/${req.httpVersion}\r\n`
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (OFFER_FIELDS.has(lower)) continue
    let value = raw[i + 1]!
    if (lower === "connection") {
      value = value.split(",").map((t) => t.trim()).filter((t) => t !== "" && !OFFER_FIELDS.has(t.toLowerCase())).join(", ")
      if (value === "") continue
    }
    head += `${name}: ${value}\r\n`
  }
  return Buffer.from(`${head}\r\n`, "latin1")
}
