/**
 * Rate limiting through the real proxy (memory backend), over real sockets (issue 4; threat: request
 * flooding by one client, and limit evasion by a forged X-Forwarded-For). Distinct clients are distinct
 * loopback source addresses (127.0.0.x), which Linux lets any socket bind.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Origin, startOrigin, startRawOrigin } from "../fixtures/origins.ts"
import { rawRequest, statusOf } from "../fixtures/raw.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { type Reply, pause, send } from "../fixtures/client.ts"
import { runProgram, startProgram, writeTempConfig } from "../fixtures/program.ts"

const burstFrom = async (port: number, n: number, localAddress: string, headers: Record<string, string> = {}) => {
  const replies: Array<Reply> = []
  for (let i = 0; i < n; i++) replies.push(await send(port, "/r", { localAddress, headers }))
  return replies
}

describe("rate limiting, memory backend (RFC 6585 §4, draft-ietf-httpapi-ratelimit-headers)", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      security: {
        filters_file: "",
        rate_limiting: {
          enabled: true,
          requests_per_second: 5,
          burst: 3,
          exempt: ["127.0.0.9/32"],
          trusted_proxies: ["127.0.0.8/32"]
        }
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("RFC 6585 §4: a burst is served, the next request gets 429 with Retry-After and RateLimit headers", async () => {
    const seenBefore = origin.seen.length
    const replies = await burstFrom(proxy.port, 4, "127.0.0.2")
    expect(replies.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200])
    expect(replies[0]!.headers["ratelimit-policy"]).toBe("5;w=1;burst=3")
    expect(replies[0]!.headers["ratelimit"]).toMatch(/^limit=3, remaining=2, reset=\d+$/)
    expect(replies[2]!.headers["ratelimit"]).toMatch(/^limit=3, remaining=0, reset=\d+$/)
    const refused = replies[3]!
    expect(refused.status).toBe(429)
    expect(refused.headers["retry-after"]).toBe("1")
    expect(refused.headers["ratelimit-policy"]).toBe("5;w=1;burst=3")
    expect(refused.headers["ratelimit"]).toMatch(/^limit=3, remaining=0, reset=\d+$/)
    expect(refused.json["error"]).toBe("rate_limited")
    // the refused request never reached the origin
    expect(origin.seen.length - seenBefore).toBe(3)
    const line = proxy.entries().find((e) => e["status"] === 429)
    expect(line?.["outcome"]).toBe("RateLimited")
  })

  it("token bucket refill: after more than 1/rps a refused client gets one more request", async () => {
    const replies = await burstFrom(proxy.port, 4, "127.0.0.3")
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429])
    await pause(450) // 5 rps → one token per 200 ms; wait for two
    const again = await send(proxy.port, "/r", { localAddress: "127.0.0.3" })
    expect(again.status).toBe(200)
  })

  it("budgets are per client: one client's 429 leaves another client untouched", async () => {
    const a = await burstFrom(proxy.port, 4, "127.0.0.4")
    expect(a[3]!.status).toBe(429)
    const b = await send(proxy.port, "/r", { localAddress: "127.0.0.5" })
    expect(b.status).toBe(200)
  })

  it("exempt CIDRs are never limited and get no RateLimit headers", async () => {
    const replies = await burstFrom(proxy.port, 8, "127.0.0.9")
    expect(replies.map((r) => r.status)).toEqual(Array(8).fill(200))
    expect(replies[0]!.headers["ratelimit"]).toBeUndefined()
  })

  it("threat: forged X-Forwarded-For from an untrusted peer is ignored (the socket address is the key)", async () => {
    const replies: Array<Reply> = []
    for (let i = 0; i < 4; i++) {
      replies.push(await send(proxy.port, "/r", { localAddress: "127.0.0.6", headers: { "x-forwarded-for": `198.51.100.${i + 1}` } }))
    }
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429])
    expect(replies[3]!.json["detail"]).toContain("127.0.0.6")
  })

  it("X-Forwarded-For from a trusted proxy: each forwarded client gets its own budget", async () => {
    // through the trusted proxy 127.0.0.8: two clients, each within its burst of 3
    const c1 = await burstFrom(proxy.port, 3, "127.0.0.8", { "x-forwarded-for": "198.51.100.10" })
    const c2 = await burstFrom(proxy.port, 3, "127.0.0.8", { "x-forwarded-for": "198.51.100.11" })
    expect([...c1, ...c2].map((r) => r.status)).toEqual(Array(6).fill(200))
    // the right-most untrusted entry is the client: a spoofed left part does not give a fresh budget
    const c1again = await send(proxy.port, "/r", { localAddress: "127.0.0.8", headers: { "x-forwarded-for": "1.2.3.4, 198.51.100.10" } })
    expect(c1again.status).toBe(429)
    expect(c1again.json["detail"]).toContain("198.51.100.10")
  })
})

describe("rate limiting CONNECT tunnels", () => {
  it("RFC 6585 §4: CONNECT requests spend the same budget; over it → 429 with Retry-After, nothing dialled", async () => {
    const reached: Array<unknown> = []
    const target = await startRawOrigin((s) => { reached.push(s); s.end() })
    const proxy = await startProxy({
      server: { connect: { allowed_ports: [target.port] } },
      security: { filters_file: "", rate_limiting: { requests_per_second: 0.01, burst: 2, exempt: [] } }
    })
    try {
      const connect = () => rawRequest(proxy.port, `CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\n\r\n`, 1000)
      const first = await connect()
      const second = await connect()
      expect([statusOf(first.text), statusOf(second.text)]).toEqual([200, 200])
      const third = await connect()
      expect(statusOf(third.text)).toBe(429)
      expect(third.text.toLowerCase()).toMatch(/retry-after: \d+/)
      expect(third.text.toLowerCase()).toContain("ratelimit-policy: 1;w=100;burst=2")
      expect(reached.length).toBe(2)
    } finally {
      await proxy.stop()
      await target.close()
    }
  })
})

describe("rate limiting at max_clients", () => {
  it("threat: limit reset by address rotation — at max_clients a depleted client is never dropped while fuller buckets exist", async () => {
    const origin = await startOrigin()
    const proxy = await startProxy({
      routing: { default_backend: origin.url },
      // one token per 100 s: no bucket fills up again during the test
      security: { filters_file: "", rate_limiting: { requests_per_second: 0.01, burst: 2, exempt: [], max_clients: 3 } }
    })
    try {
      const limited = await burstFrom(proxy.port, 3, "127.0.1.1")
      expect(limited.map((r) => r.status)).toEqual([200, 200, 429])
      // six other addresses (one request each) pass through the three places
      for (let i = 2; i <= 7; i++) expect((await send(proxy.port, "/r", { localAddress: `127.0.1.${i}` })).status).toBe(200)
      // the limited client is still limited: the buckets nearest to full made room, not its own
      const again = await send(proxy.port, "/r", { localAddress: "127.0.1.1" })
      expect(again.status).toBe(429)
      expect(again.headers["ratelimit"]).toMatch(/^limit=2, remaining=0/)
    } finally {
      await proxy.stop()
      await origin.close()
    }
  })
})

describe("rate limiting disabled", () => {
  it("rate_limiting.enabled: false serves every request without RateLimit headers", async () => {
    const origin = await startOrigin()
    const proxy = await startProxy({
      routing: { default_backend: origin.url },
      security: { filters_file: "", rate_limiting: { enabled: false, requests_per_second: 1, burst: 1, exempt: [] } }
    })
    try {
      const replies = await burstFrom(proxy.port, 3, "127.0.0.2")
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200])
      expect(replies[0]!.headers["ratelimit-policy"]).toBeUndefined()
    } finally {
      await proxy.stop()
      await origin.close()
    }
  })
})

describe("rate limiting from environment variables (the real program)", () => {
  it("RATE_LIMIT_RPS / RATE_LIMIT_BURST override the file; a bad RATE_LIMIT_RPS is named at start-up", async () => {
    const origin = await startOrigin()
    const file = writeTempConfig(
      `server: {port: 0}\nrouting: {default_backend: "${origin.url}"}\nmetrics: {enabled: false}\n` +
        `security: {filters_file: "", rate_limiting: {enabled: false, requests_per_second: 100, burst: 100, exempt: []}}\n`
    )
    const prog = await startProgram(["--config", file], { RATE_LIMIT_ENABLED: "true", RATE_LIMIT_RPS: "0.01", RATE_LIMIT_BURST: "2" })
    try {
      const replies = await burstFrom(prog.port, 3, "127.0.0.2")
      expect(replies.map((r) => r.status)).toEqual([200, 200, 429])
      expect(replies[0]!.headers["ratelimit-policy"]).toBe("1;w=100;burst=2")
    } finally {
      prog.child.kill("SIGKILL")
      await origin.close()
    }
    const bad = await runProgram(["--config", file, "--check-config"], { RATE_LIMIT_RPS: "fast" })
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain("security.rate_limiting.requests_per_second")
    expect(bad.stderr).toContain("env RATE_LIMIT_RPS")
  })
})
