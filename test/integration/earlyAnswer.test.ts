/**
 * An origin that answers before the request body has all arrived (a 413 after the head, an auth
 * failure): the rest of the body will not be read, so the connection cannot stay in keep-alive. The
 * answer says `Connection: close` and the connection is closed after it (RFC 9112 §9.6; the lingering
 * close then drops what the client still sends). It used to promise keep-alive and stop reading: the
 * client's next request on it was never answered.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

describe("an origin's early answer to an upload", () => {
  let origin: { port: number; close: () => Promise<void> }
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startRawOrigin((socket) => {
      socket.once("data", () => socket.write("HTTP/1.1 413 Payload Too Large\r\ncontent-length: 7\r\n\r\ntoo big"))
      socket.resume()
    })
    proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${origin.port}` } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  for (const framing of ["content-length: 1000000", "transfer-encoding: chunked"]) {
    it(`RFC 9112 §9.6: answered mid-body (${framing.split(":")[0]}) → relayed with Connection: close, then the connection is closed`, async () => {
      const part = framing.startsWith("content") ? "x".repeat(1000) : `3e8\r\n${"x".repeat(1000)}\r\n`
      const r = await rawRequest(proxy.port, `POST /early HTTP/1.1\r\nHost: a\r\n${framing}\r\n\r\n${part}`, 4000)
      expect(statusOf(r.text)).toBe(413)
      expect(r.text.toLowerCase()).toContain("connection: close")
      expect(r.closed).toBe(true)
    })
  }
})
