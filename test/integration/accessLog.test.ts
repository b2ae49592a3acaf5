/**
 * The access log through the real proxy: the text format keeps each request on one parseable line
 * whatever bytes the client sent, and `logging.access_log` alone switches the access log.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"

describe("access log", () => {
  let origin: Origin
  beforeAll(async () => {
    origin = await startOrigin()
  })
  afterAll(async () => {
    await origin.close()
  })

  it("log injection: the text format escapes request bytes (\\xHH) and names the kind, one line per request", async () => {
    const proxy = await startProxy({ routing: { default_backend: origin.url }, logging: { format: "text" } })
    try {
      // a `"` the parser lets through in a target (answered 200), and terminal escapes it refuses (400)
      const quoted = await rawRequest(proxy.port, 'GET /a"b"x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
      expect(statusOf(quoted.text)).toBe(200)
      const escapes = await rawRequest(proxy.port, Buffer.from("GET /\x1b[31mRED\x1b[0m HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "latin1"))
      expect(statusOf(escapes.text)).toBe(400)
      await expect.poll(() => proxy.lines.length).toBe(2)
      const [first, second] = proxy.lines
      expect(first).toContain(' "GET /a\\x22b\\x22x" 200 ')
      expect(first).toContain(" kind=reverse ")
      expect(second).toContain(' "GET /\\x1B[31mRED\\x1B[0m" 400 ')
      expect(second).toContain(" kind=invalid ")
      for (const line of proxy.lines) {
        expect(line.endsWith("\n") && line.indexOf("\n") === line.length - 1).toBe(true)
        expect(/^[\x20-\x7e]*\n$/.test(line)).toBe(true)
        expect(line.split('"')).toHaveLength(3)
      }
    } finally {
      await proxy.stop()
    }
  })

  it("credential leak: an absolute-form target's userinfo (refused, 400) is logged REDACTED:REDACTED, as traces export it", async () => {
    const proxy = await startProxy({ routing: { default_backend: origin.url } })
    try {
      const r = await rawRequest(proxy.port, `GET http://user:secretpw@127.0.0.1:${origin.port}/raw?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)
      expect(statusOf(r.text)).toBe(400)
      await expect.poll(() => proxy.entries().length).toBe(1)
      expect(proxy.entries()[0]!.url).toBe(`http://REDACTED:REDACTED@127.0.0.1:${origin.port}/raw?q=1`)
      expect(proxy.lines.join("")).not.toContain("secretpw")
    } finally {
      await proxy.stop()
    }
  })

  it("logging.level none silences the application logs only: the access log stays on (logging.access_log switches it)", async () => {
    const on = await startProxy({ routing: { default_backend: origin.url }, logging: { level: "none" } })
    try {
      await (await fetch(`${on.url}/level-none`)).text()
      await expect.poll(() => on.entries().map((e) => e.url)).toEqual(["/level-none"])
    } finally {
      await on.stop()
    }
    const off = await startProxy({ routing: { default_backend: origin.url }, logging: { access_log: false } })
    try {
      await (await fetch(`${off.url}/access-off`)).text()
      await (await fetch(`${off.url}/access-off`)).text()
      expect(off.lines).toEqual([])
    } finally {
      await off.stop()
    }
  })
})
