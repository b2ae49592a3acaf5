/**
 * RFC 9110 §15.2: a proxy MUST forward 1xx responses, unless it asked for them itself; none goes to an
 * HTTP/1.0 client. An origin's `102 Processing`, `103 Early Hints` (its `Link` fields) or any other
 * 1xx is written to the client before the final response with `res.writeInformation` (Node ≥ 24.18),
 * hop-by-hop fields removed and `Via` appended like a final response's, and without Content-Length
 * (RFC 9110 §8.6: a server MUST NOT send it in a 1xx).
 *
 * `100 Continue`: the proxy answers a client's `Expect: 100-continue` itself once the request passed
 * its checks (phases/upstream.ts) and never sends the Expect on (hopHeaders.ts), so an origin's 100 is
 * one the client did not ask for. It goes on only to a client that sent no Expect: one that did already
 * has its 100 from the proxy and gets no second.
 */
import type { ServerResponse } from "node:http"
import { downstreamResponseHeaders, type HeaderMap } from "../domain/hopHeaders.ts"

export const relayInterim = (res: ServerResponse, via: string, status: number, headers: HeaderMap): void => {
  const req = res.req
  // 101 is only ever the answer to an upgrade (upgradeTunnel.ts); after the final head nothing more can come
  if (status === 101 || res.headersSent || !res.writable || req.httpVersionMajor !== 1 || req.httpVersionMinor === 0) return
  if (status === 100 && req.headers.expect !== undefined) return
  // with the status: a 1xx's Content-Length is dropped (RFC 9110 §8.6)
  const list = downstreamResponseHeaders(headers, via, status)
  const out: Array<string> = []
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string
    const value = list[i + 1]!
    if (typeof value === "string") out.push(name, value)
    else for (const one of value) out.push(name, one)
  }
  try {
    res.writeInformation(status, out)
  } catch {
    // a field Node will not write (a control character): the interim response, advisory only, is dropped
  }
}
