/**
 * The access log's bytes_out for a response cut short by its upstream (the origin closes mid-body after
 * the head went out): what the client really got, like nginx's $body_bytes_sent, on both request
 * paths (the native relay and a traced request's fiber).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { request } from "node:http"
import { startRawOrigin } from "../fixtures/origins.ts"
import { startProxy } from "../fixtures/proxy.ts"

const PART = 100_000

describe("bytes_out of a response its upstream cut short", () => {
  let origin: { port: number; close: () => Promise<void> }
  beforeAll(async () => {
    // a chunked 200: one 100 000-byte chunk, then the connection closes without the last chunk
    origin = await startRawOrigin((socket) => {
      socket.once("data", () => {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n${PART.toString(16)}\r\n`)
        socket.end(Buffer.alloc(PART, 97))
      })
      socket.on("error", () => {})
    })
  })
  afterAll(() => origin.close())

  for (const traced of [false, true]) {
    it(`RFC 9112 §6.3: an upstream reset mid-body after the head was sent logs the body bytes the client got (${traced ? "traced" : "native relay"})`, async () => {
      const proxy = await startProxy({
        routing: { default_backend: `http://127.0.0.1:${origin.port}` },
        tracing: traced ? { enabled: true, otlp_endpoint: "http://127.0.0.1:9/v1/traces", sample_ratio: 1 } : { enabled: false }
      })
      try {
        const got = await new Promise<number>((resolve) => {
          let n = 0
          const req = request({ host: "127.0.0.1", port: proxy.port, path: "/cut", agent: false }, (res) => {
            res.on("data", (c: Buffer) => { n += c.length })
            res.on("error", () => {})
            res.on("close", () => resolve(n))
          })
          req.on("error", () => resolve(n))
          req.end()
        })
        expect(got).toBe(PART)
        await expect.poll(() => proxy.entries().find((e) => e.url === "/cut")).toBeDefined()
        const entry = proxy.entries().find((e) => e.url === "/cut")!
        expect(entry).toMatchObject({ status: 200, outcome: "upstream_reset", bytes_out: PART })
      } finally {
        await proxy.stop()
      }
    })
  }
})
