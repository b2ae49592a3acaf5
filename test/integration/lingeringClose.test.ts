/**
 * RFC 9112 §9.6 (tear-down): a server that answers and closes while its client is still sending must
 * close in stages — half-close, keep reading, then close — or the client's kernel gets a reset for the
 * data still in flight, the client's writes fail and the answer can be lost (curl: "000", exit 55).
 * Each client here sends its whole request (well past every socket buffer) before it reads anything
 * back, as an uploading client does: it must see no reset, then the answer, then the close.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect } from "node:net"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { statusOf } from "../fixtures/raw.ts"

/** Well past what loopback socket buffers hold, so a server that stopped reading would make the writes fail. */
const BODY_BYTES = 32 * 1024 * 1024
const CHUNK = Buffer.alloc(64 * 1024, 120)

interface Upload {
  readonly text: string
  /** The error the client's socket saw (EPIPE / ECONNRESET when the server reset it), if any. */
  readonly error: string | undefined
  readonly sent: number
}

/** Sends `head`, then BODY_BYTES of body (as chunks when `chunked`), then half-closes; reads what comes back. */
const upload = (port: number, head: string, chunked: boolean): Promise<Upload> =>
  new Promise((resolve) => {
    let text = ""
    let error: string | undefined
    let sent = 0
    // (half-open: the server's FIN, sent with its answer, does not end this side; the upload goes on)
    const s = connect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => {
      s.write(head)
      const frame = chunked ? Buffer.concat([Buffer.from(`${CHUNK.length.toString(16)}\r\n`), CHUNK, Buffer.from("\r\n")]) : CHUNK
      const pump = () => {
        while (sent < BODY_BYTES && !s.destroyed) {
          sent += CHUNK.length
          if (!s.write(frame)) return void s.once("drain", pump)
        }
        if (!s.destroyed) s.end(chunked ? "0\r\n\r\n" : "")
      }
      pump()
    })
    s.on("data", (c) => { text += c.toString("latin1") })
    s.on("error", (e: NodeJS.ErrnoException) => { error ??= e.code ?? e.message })
    s.on("close", () => resolve({ text, error, sent }))
  })

describe("RFC 9112 §9.6: an early answer reaches a client that is still sending (lingering close)", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({ server: { limits: { max_body_bytes: 1000 } }, routing: { default_backend: origin.url } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("RFC 9112 §9.6 / RFC 9110 §15.5.14: 413 for a declared Content-Length over max_body_bytes, the client sending the whole body", async () => {
    const before = proxy.lines.length
    const r = await upload(proxy.port, `POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`, false)
    expect(r.error).toBeUndefined()
    expect(r.sent).toBe(BODY_BYTES)
    expect(statusOf(r.text)).toBe(413)
    expect(r.text).toMatch(/connection: close/i)
    expect(proxy.entries().slice(before)).toMatchObject([{ url: "/upload", status: 413, outcome: "PayloadTooLarge" }])
  })

  it("RFC 9112 §9.6 / RFC 9110 §15.5.14: 413 for a chunked body counted past max_body_bytes, the client sending the whole body", async () => {
    const before = proxy.lines.length
    const r = await upload(proxy.port, "POST /upload-chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", true)
    expect(r.error).toBeUndefined()
    expect(r.sent).toBe(BODY_BYTES)
    expect(statusOf(r.text)).toBe(413)
    expect(proxy.entries().slice(before)).toMatchObject([{ url: "/upload-chunked", status: 413, outcome: "PayloadTooLarge" }])
  })

  it("RFC 9112 §9.6 / §6.1: 400 for a framing conflict in the head, the client sending the body behind it", async () => {
    const r = await upload(proxy.port, `POST /smuggle HTTP/1.1\r\nHost: a\r\nContent-Length: ${BODY_BYTES}\r\nTransfer-Encoding: chunked\r\n\r\n`, false)
    expect(r.error).toBeUndefined()
    expect(r.sent).toBe(BODY_BYTES)
    expect(statusOf(r.text)).toBe(400)
    expect(r.text).toMatch(/"error":"bad_request"/)
  })

  it("the proxy keeps serving after the lingering closes", async () => {
    const res = await fetch(`${proxy.url}/after`)
    expect(res.status).toBe(200)
  })
})
