/**
 * Proxy authentication through the real proxy (RFC 9110 §11.7.1 / §15.5.8, Basic per RFC 7617; issue 4,
 * threat: an open proxy used by anyone, and credentials leaking to origins). Users are stored as bcrypt
 * hashes made at test time.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import bcrypt from "bcryptjs"
import type { Socket } from "node:net"
import { type Origin, startOrigin, startRawOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"
import { basic, send } from "../fixtures/client.ts"
import { runProgram, writeTempConfig } from "../fixtures/program.ts"

describe("proxy auth (Basic), forward proxy and CONNECT", () => {
  let origin: Origin
  let proxy: RunningProxy
  let tunnelTarget: { port: number; close: () => Promise<void> }
  const reached: Array<Socket> = []
  beforeAll(async () => {
    origin = await startOrigin()
    tunnelTarget = await startRawOrigin((s) => { reached.push(s); s.end("hello from the tunnel target") })
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      server: { connect: { allowed_ports: [tunnelTarget.port] } },
      security: {
        filters_file: "",
        proxy_auth: { users: { alice: bcrypt.hashSync("wonderland", 4) }, realm: "test-realm" }
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
    await tunnelTarget.close()
  })

  const forward = (headers: Record<string, string> = {}) => send(proxy.port, `${origin.url}/fwd`, { headers })

  it("RFC 9110 §15.5.8: no Proxy-Authorization → 407 with Proxy-Authenticate: Basic realm", async () => {
    const before = origin.seen.length
    const r = await forward()
    expect(r.status).toBe(407)
    expect(r.headers["proxy-authenticate"]).toMatch(/^Basic realm="test-realm"/)
    expect(r.json["error"]).toBe("proxy_auth_required")
    expect(origin.seen.length).toBe(before)
  })

  it("RFC 7617: wrong password, unknown user, or a non-Basic scheme → 407", async () => {
    for (const value of [basic("alice", "nope"), basic("mallory", "wonderland"), "Bearer abc", "Basic !!!"]) {
      const r = await forward({ "proxy-authorization": value })
      expect(r.status, value).toBe(407)
      expect(r.headers["proxy-authenticate"]).toMatch(/^Basic /)
    }
  })

  it("right credentials → forwarded; RFC 9110 §11.7.2: Proxy-Authorization is consumed, never sent upstream", async () => {
    const r = await forward({ "proxy-authorization": basic("alice", "wonderland") })
    expect(r.status).toBe(200)
    const seen = origin.seen.at(-1)!
    expect(seen.url).toBe("/fwd")
    expect(seen.headers["proxy-authorization"]).toBeUndefined()
    expect(seen.rawHeaders.map((h) => h.toLowerCase())).not.toContain("proxy-authorization")
    // a second request with the same credentials (remembered verification) passes too
    expect((await forward({ "proxy-authorization": basic("alice", "wonderland") })).status).toBe(200)
  })

  it("RFC 9110 §9.3.6: CONNECT without credentials → 407 and nothing dialled; with them → tunnel", async () => {
    const reachedBefore = reached.length
    const refused = await rawRequest(proxy.port, `CONNECT 127.0.0.1:${tunnelTarget.port} HTTP/1.1\r\nHost: 127.0.0.1:${tunnelTarget.port}\r\n\r\n`)
    expect(statusOf(refused.text)).toBe(407)
    expect(refused.text.toLowerCase()).toContain('proxy-authenticate: basic realm="test-realm"')
    expect(reached.length).toBe(reachedBefore)
    const ok = await rawRequest(
      proxy.port,
      `CONNECT 127.0.0.1:${tunnelTarget.port} HTTP/1.1\r\nHost: 127.0.0.1:${tunnelTarget.port}\r\nProxy-Authorization: ${basic("alice", "wonderland")}\r\n\r\n`
    )
    expect(statusOf(ok.text)).toBe(200)
    expect(ok.text).toContain("hello from the tunnel target")
  })

  it("reverse-proxy (origin-form) requests and health endpoints are not proxy requests: no 407", async () => {
    expect((await send(proxy.port, "/rev")).status).toBe(200)
    expect((await send(proxy.port, "/health/liveness")).status).toBe(200)
  })
})

describe("proxy auth behind the rate limit", () => {
  it("threat: credential brute force / bcrypt CPU exhaustion — failed attempts count against the client's rate limit (429)", async () => {
    const origin = await startOrigin()
    const proxy = await startProxy({
      routing: { default_backend: origin.url },
      security: {
        filters_file: "",
        proxy_auth: { users: { alice: bcrypt.hashSync("wonderland", 4) } },
        rate_limiting: { requests_per_second: 0.01, burst: 3, exempt: [] }
      }
    })
    try {
      const statuses: Array<number> = []
      for (let i = 0; i < 5; i++) {
        const r = await send(proxy.port, `${origin.url}/x`, { localAddress: "127.0.0.2", headers: { "proxy-authorization": basic("alice", `guess-${i}`) } })
        statuses.push(r.status)
      }
      expect(statuses).toEqual([407, 407, 407, 429, 429])
      // another client with the right credentials is served
      const ok = await send(proxy.port, `${origin.url}/x`, { localAddress: "127.0.0.3", headers: { "proxy-authorization": basic("alice", "wonderland") } })
      expect(ok.status).toBe(200)
      // CONNECT attempts count too
      const connect = await rawRequest(proxy.port, `CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nProxy-Authorization: ${basic("alice", "guess-x")}\r\n\r\n`, 1000)
      expect(statusOf(connect.text)).toBe(407) // from 127.0.0.1, its own budget
    } finally {
      await proxy.stop()
      await origin.close()
    }
  })
})

describe("proxy auth under a flood of wrong passwords", () => {
  it("threat: password-hash CPU exhaustion — verifications are bounded (503 past the queue), /health and verified clients stay served", async () => {
    const origin = await startOrigin()
    const proxy = await startProxy({
      routing: { default_backend: origin.url },
      security: {
        filters_file: "",
        // bcrypt cost 10, as in the README: bcryptjs hashes on the event loop
        proxy_auth: { users: { alice: bcrypt.hashSync("wonderland", 10) } },
        rate_limiting: { enabled: false }
      }
    })
    try {
      const forward = (user: string, password: string) =>
        send(proxy.port, `${origin.url}/x`, { localAddress: "127.0.0.2", headers: { "proxy-authorization": basic(user, password) } })
      // a client verified before the flood
      expect((await forward("alice", "wonderland")).status).toBe(200)

      const events: Array<string> = []
      // distinct wrong passwords (nothing to remember), for a real user and for unknown ones
      const flood = Array.from({ length: 60 }, (_, i) =>
        forward(i % 3 === 0 ? `nobody-${i}` : "alice", `guess-${i}`).then((r) => {
          events.push(String(r.status))
          return r
        }))
      await Promise.race(flood)
      const live = await send(proxy.port, "/health/liveness")
      events.push("liveness")
      const verified = await forward("alice", "wonderland")
      events.push("verified")
      const replies = await Promise.all(flood)

      expect(live.status).toBe(200)
      expect(verified.status).toBe(200)
      // liveness and the remembered client were answered while queued verifications were still pending
      expect(events.indexOf("liveness")).toBeLessThan(events.lastIndexOf("407"))
      expect(events.indexOf("verified")).toBeLessThan(events.lastIndexOf("407"))
      // the work is bounded: past the queue, refused at once with 503 + Retry-After (not 407: the
      // credentials were not judged)
      const refused = replies.filter((r) => r.status === 503)
      expect(refused.length).toBeGreaterThan(0)
      expect(refused[0]!.headers["retry-after"]).toBe("1")
      expect(refused[0]!.json["error"]).toBe("proxy_auth_busy")
      expect(replies.filter((r) => r.status === 407).length + refused.length).toBe(60)
      // once the queue has drained, a wrong password is judged again (407)
      expect((await forward("alice", "late-guess")).status).toBe(407)
    } finally {
      await proxy.stop()
      await origin.close()
    }
  })
})

describe("proxy auth: stored hashes checked at start-up", () => {
  it("an scrypt hash node:crypto cannot use (N not a power of two, empty hash) fails --check-config naming the key, not every login with 500", async () => {
    const salt = "3ADkQ+HCQeX1RVun2CNpBQ=="
    const key = "sj54DOEATAVNzryXBDWs9vcUxQ9JIC0s+O7FFauW1j0="
    const cases: ReadonlyArray<readonly [string, string]> = [
      [`scrypt$16000$8$1$${salt}$${key}`, "power of two"],
      // decodes to 0 bytes: keylen 0 would have matched any password
      [`scrypt$16384$8$1$${salt}$A`, "at least 16 bytes"],
      [`scrypt$16384$0$1$${salt}$${key}`, "scrypt r"],
      ["$2b$99$9mlJCo06kLNZiiuMgLKblez8yFfAPBTwRDA6PPrQmtoao7P5tNYe6", "bcrypt cost"]
    ]
    const check = (hash: string) =>
      runProgram(["--config", writeTempConfig(
        `server: {port: 0}\nmetrics: {enabled: false}\nsecurity:\n  filters_file: ""\n  proxy_auth: {users: {bob: "${hash}"}}\n`
      ), "--check-config"])
    const results = await Promise.all(cases.map(([hash]) => check(hash)))
    cases.forEach(([hash, expected], i) => {
      expect(results[i]!.code, hash).toBe(1)
      expect(results[i]!.stderr).toContain("security.proxy_auth.users.bob")
      expect(results[i]!.stderr).toContain(expected)
    })
    expect((await check(`scrypt$16384$8$1$${salt}$${key}`)).code).toBe(0)
  })
})
