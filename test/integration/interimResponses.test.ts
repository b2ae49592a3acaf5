/**
 * Interim (1xx) responses from the origin (RFC 9110 §15.2): a proxy MUST forward them (none to an
 * HTTP/1.0 client), and a client MUST be able to read any number of them before the final response,
 * asked for or not. undici's HTTP/1.1 client took a 100 for a broken response (502 "reset"); 102 and
 * 103 were lost.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Socket } from "node:net"
import { startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusesOf } from "../fixtures/raw.ts"

const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

/** What the origin sends before its final response, by path. */
const INTERIM: Record<string, string> = {
  "/i100": "HTTP/1.1 100 Continue\r\n\r\n",
  "/i102": "HTTP/1.1 102 Processing\r\n\r\n",
  "/i103": "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload; as=style\r\nLink: </a.js>; rel=preload; as=script\r\nConnection: x-hop\r\nX-Hop: secret\r\n\r\n",
  "/many": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
}

/** The head of the first message in `text` that has the given status ("" when none). */
const headOf = (text: string, status: number): string => {
  const at = text.indexOf(`HTTP/1.1 ${status} `)
  return at < 0 ? "" : text.slice(at, text.indexOf("\r\n\r\n", at))
}

describe("RFC 9110 §15.2 interim responses from the origin", () => {
  let proxy: RunningProxy
  let origin: { port: number; close: () => Promise<void> }
  /** Per request the origin answered: its path and the number of the upstream connection it came on. */
  const seen: Array<{ path: string; connection: number }> = []
  beforeAll(async () => {
    let connections = 0
    origin = await startRawOrigin((s: Socket) => {
      const connection = ++connections
      let buffered = ""
      let path: string | undefined
      let length = 0
      s.on("data", (d: Buffer) => {
        buffered += d.toString("latin1")
        for (;;) {
          if (path === undefined) {
            const end = buffered.indexOf("\r\n\r\n")
            if (end < 0) return
            const head = buffered.slice(0, end)
            buffered = buffered.slice(end + 4)
            path = head.split(" ")[1]!
            length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
            // its own 100 as soon as the head is in, whether or not anybody asked
            if (path === "/expect") s.write("HTTP/1.1 100 Continue\r\n\r\n")
          }
          if (buffered.length < length) return
          buffered = buffered.slice(length)
          seen.push({ path, connection })
          const key = Object.keys(INTERIM).find((k) => path === k || path!.startsWith(`${k}/`))
          path = undefined
          if (key === undefined) {
            s.write(OK)
            continue
          }
          s.write(INTERIM[key]!)
          // the final response a little later, as from an origin still at work
          setTimeout(() => s.write(OK), 30)
        }
      })
    })
    proxy = await startProxy({ routing: { default_backend: `http://127.0.0.1:${origin.port}` } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  const get = (path: string, version = "1.1", extra = "") =>
    rawRequest(proxy.port, `GET ${path} HTTP/${version}\r\nHost: app\r\nConnection: close\r\n${extra}\r\n`, 3000)

  it("RFC 9110 §15.2: a 100 Continue the origin sends unasked, then 200 → the 200 is relayed (was 502 \"failed: reset\"), the 100 forwarded first", async () => {
    const r = await get("/i100")
    expect(statusesOf(r.text)).toEqual([100, 200])
    expect(r.text.endsWith("\r\n\r\nok")).toBe(true)
    expect(r.text).not.toContain("bad_gateway")
  })

  it("RFC 9110 §15.2: after a 100 the upstream connection is still good: the next request goes out on it", async () => {
    const first = await get("/i100/reuse-1")
    const second = await get("/i100/reuse-2")
    expect(statusesOf(first.text)).toEqual([100, 200])
    expect(statusesOf(second.text)).toEqual([100, 200])
    const a = seen.find((x) => x.path === "/i100/reuse-1")!
    const b = seen.find((x) => x.path === "/i100/reuse-2")!
    expect(b.connection).toBe(a.connection)
  })

  it("RFC 9110 §15.2: 102 Processing is forwarded before the final response (was dropped)", async () => {
    const r = await get("/i102")
    expect(statusesOf(r.text)).toEqual([102, 200])
    expect(r.text.endsWith("\r\n\r\nok")).toBe(true)
  })

  it("RFC 9110 §15.2 / RFC 8297: 103 Early Hints is forwarded with its Link fields, hop-by-hop fields removed (was dropped)", async () => {
    const r = await get("/i103")
    expect(statusesOf(r.text)).toEqual([103, 200])
    const hints = headOf(r.text, 103).toLowerCase()
    expect(hints).toContain("link: </s.css>; rel=preload; as=style")
    expect(hints).toContain("link: </a.js>; rel=preload; as=script")
    expect(hints).toContain("via: 1.1 gatehouse")
    expect(hints).not.toContain("x-hop")
    expect(hints).not.toContain("connection: x-hop")
    expect(r.text.endsWith("\r\n\r\nok")).toBe(true)
  })

  it("RFC 9110 §15.2: several interim responses in a row are all forwarded, in order", async () => {
    const r = await get("/many")
    expect(statusesOf(r.text)).toEqual([100, 102, 100, 103, 200])
  })

  it("RFC 9110 §15.2: an HTTP/1.0 client gets no 1xx, only the final response", async () => {
    for (const path of ["/i100", "/i102", "/i103"]) {
      const r = await get(path, "1.0")
      expect(statusesOf(r.text)).toEqual([200])
      expect(r.text.endsWith("\r\n\r\nok")).toBe(true)
    }
  })

  it("RFC 9110 §10.1.1: a client's Expect: 100-continue gets one 100 (the proxy's), not a second from the origin", async () => {
    const r = await new Promise<string>((resolve) => {
      import("node:net").then(({ connect }) => {
        let text = ""
        const s = connect(proxy.port, "127.0.0.1", () =>
          s.write("POST /expect HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"))
        s.on("data", (c: Buffer) => {
          const first = !text.includes("100 Continue")
          text += c.toString("latin1")
          if (first && text.includes("100 Continue")) s.write("hello")
        })
        s.on("close", () => resolve(text))
        s.on("error", () => resolve(text))
      })
    })
    expect(statusesOf(r)).toEqual([100, 200])
    expect(r.endsWith("\r\n\r\nok")).toBe(true)
  })
})
