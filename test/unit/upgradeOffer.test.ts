import { describe, expect, it } from "@effect/vitest"
import type { IncomingMessage } from "node:http"
import { plainRequestHead, tunnelledProtocols } from "../../src/http/upgradeOffer.ts"

/** The parts of a parsed request the functions read. */
const request = (rawHeaders: Array<string>, version = "1.1", method = "GET", url = "/x"): IncomingMessage => {
  const headers: Record<string, string> = {}
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i]!.toLowerCase()
    headers[k] = headers[k] === undefined ? rawHeaders[i + 1]! : `${headers[k]}, ${rawHeaders[i + 1]}`
  }
  return { method, url, httpVersion: version, httpVersionMinor: Number(version.split(".")[1]), rawHeaders, headers } as unknown as IncomingMessage
}

describe("RFC 9110 §7.8: which Upgrade offers are tunnelled", () => {
  it("RFC 9110 §7.8: websocket is; h2c is not (HTTP/2 cleartext cannot be carried as bytes: the proxy would have to speak h2)", () => {
    expect(tunnelledProtocols(request(["Upgrade", "websocket"]))).toBe("websocket")
    expect(tunnelledProtocols(request(["Upgrade", "h2c"]))).toBeUndefined()
    expect(tunnelledProtocols(request(["Upgrade", "H2C"]))).toBeUndefined()
    // h2c dropped from a list, the rest still offered
    expect(tunnelledProtocols(request(["Upgrade", "h2c, websocket"]))).toBe("websocket")
  })

  it("RFC 9110 §7.8: an HTTP/1.0 request's offer is ignored (a server MUST ignore it), and so is one with content", () => {
    expect(tunnelledProtocols(request(["Upgrade", "websocket"], "1.0"))).toBeUndefined()
    expect(tunnelledProtocols(request(["Upgrade", "websocket", "Content-Length", "3"]))).toBeUndefined()
    expect(tunnelledProtocols(request(["Upgrade", "websocket", "Transfer-Encoding", "chunked"]))).toBeUndefined()
    expect(tunnelledProtocols(request(["Upgrade", "websocket", "Content-Length", "0"]))).toBe("websocket")
  })

  it("RFC 9110 §7.6.1: the plain request keeps every other field byte for byte, in order; Upgrade, HTTP2-Settings and their Connection tokens go", () => {
    const head = plainRequestHead(request([
      "Host", "app",
      "Connection", "Upgrade, HTTP2-Settings, keep-alive, X-Mine",
      "Upgrade", "h2c",
      "HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA",
      "X-Mine", "v\u00e9",
      "X-Mine", "two"
    ], "1.1", "POST", "/p?q=1")).toString("latin1")
    expect(head).toBe("POST /p?q=1 HTTP/1.1\r\nHost: app\r\nConnection: keep-alive, X-Mine\r\nX-Mine: v\u00e9\r\nX-Mine: two\r\n\r\n")
    const bare = plainRequestHead(request(["Host", "app", "Connection", "Upgrade", "Upgrade", "websocket"], "1.0")).toString("latin1")
    expect(bare).toBe("GET /x HTTP/1.0\r\nHost: app\r\n\r\n")
  })
})
