/**
 * Rate limiting with `backend: redis` against a real redis-server (issue 4; threat: a client spreading
 * its requests over several Gatehouse instances to multiply its budget; availability when the shared
 * backend dies). Instance A is the real program as a child process (its logs are read), instance B
 * runs in-process; both share one Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type AddressInfo, connect, createServer, type Socket } from "node:net"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type StartedProgram, startProgram, writeTempConfig } from "../fixtures/program.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { type RunningRedis, startRedis } from "../fixtures/redis.ts"
import { type Reply, pause, send } from "../fixtures/client.ts"

/** Repeats `attempt` until `done` holds (bounded), returning the last reply: for "eventually recovers". */
const eventually = async (attempt: () => Promise<Reply>, done: (r: Reply) => boolean, tries = 100): Promise<Reply> => {
  let last = await attempt()
  for (let i = 0; i < tries && !done(last); i++) {
    await pause(100)
    last = await attempt()
  }
  return last
}

/** A Redis-backed limit of one token per 100 s: nothing refills during a test. */
const redisLimits = (onError: "allow" | "deny", url: string, extra: Record<string, unknown>) => ({
  enabled: true,
  backend: "redis",
  redis_url: url,
  requests_per_second: 0.01,
  exempt: [],
  on_backend_error: onError,
  ...extra
})

describe("rate limiting, redis backend shared by two instances", () => {
  let origin: Origin
  let redis: RunningRedis
  let a: StartedProgram
  let b: RunningProxy
  const limits = (onError: "allow" | "deny", url: string) => redisLimits(onError, url, { burst: 4 })
  beforeAll(async () => {
    origin = await startOrigin()
    redis = await startRedis()
    const rl = limits("allow", redis.url)
    a = await startProgram(["--config", writeTempConfig(
      `server: {port: 0}\nrouting: {default_backend: "${origin.url}"}\nlogging: {format: json, level: info}\n` +
        `metrics: {enabled: false}\n` +
        `security:\n  filters_file: ""\n  rate_limiting: ${JSON.stringify(rl)}\n`
    )])
    b = await startProxy({
      routing: { default_backend: origin.url },
      security: { filters_file: "", rate_limiting: limits("deny", redis.url) }
    })
  })
  afterAll(async () => {
    await b.stop()
    a.child.kill("SIGKILL")
    await redis.stop()
    await origin.close()
  })

  it("threat: budget multiplication across instances — one budget per client over both instances", async () => {
    const statuses: Array<number> = []
    for (const port of [a.port, b.port, a.port, b.port]) statuses.push((await send(port, "/r", { localAddress: "127.0.0.2" })).status)
    expect(statuses).toEqual([200, 200, 200, 200])
    const overA = await send(a.port, "/r", { localAddress: "127.0.0.2" })
    const overB = await send(b.port, "/r", { localAddress: "127.0.0.2" })
    expect([overA.status, overB.status]).toEqual([429, 429])
    expect(overB.headers["retry-after"]).toBeDefined()
    expect(overB.headers["ratelimit"]).toMatch(/^limit=4, remaining=0, reset=\d+$/)
    // another client still has its own budget
    expect((await send(b.port, "/r", { localAddress: "127.0.0.3" })).status).toBe(200)
  })

  it("redis killed mid-test: on_backend_error allow serves, deny answers 503; warning, readiness detail, no crash; recovery", async () => {
    await redis.kill()
    // A (allow): served without RateLimit headers — even the client that was over its limit
    const allowed = await eventually(() => send(a.port, "/r", { localAddress: "127.0.0.2" }), (r) => r.status === 200)
    expect(allowed.status).toBe(200)
    expect(allowed.headers["ratelimit"]).toBeUndefined()
    // B (deny): 503 with Retry-After, a JSON problem
    const denied = await eventually(() => send(b.port, "/r", { localAddress: "127.0.0.4" }), (r) => r.status === 503)
    expect(denied.status).toBe(503)
    expect(denied.json["error"]).toBe("rate_limiter_unavailable")
    expect(denied.headers["retry-after"]).toBe("1")
    // a warning in A's log, a readiness detail on both (still ready: the proxy itself is fine)
    expect(a.output()).toContain("rate-limit backend redis unavailable")
    const readyA = await send(a.port, "/health/readiness")
    expect(readyA.status).toBe(200)
    expect((readyA.json["details"] as Record<string, string>)["rate_limit_backend"]).toContain("redis")
    const readyB = await send(b.port, "/health/readiness")
    expect((readyB.json["details"] as Record<string, string>)["rate_limit_backend"]).toContain("redis")
    // no crash
    expect(a.child.exitCode).toBeNull()
    expect((await send(a.port, "/health/liveness")).status).toBe(200)

    await redis.restart()
    // recovery by itself: B limits again (a fresh, empty Redis: the client has its whole burst)
    const back = await eventually(() => send(b.port, "/r", { localAddress: "127.0.0.5" }), (r) => r.status === 200)
    expect(back.status).toBe(200)
    expect(back.headers["ratelimit"]).toMatch(/^limit=4, remaining=3/)
    const backA = await eventually(() => send(a.port, "/r", { localAddress: "127.0.0.6" }), (r) => r.headers["ratelimit"] !== undefined)
    expect(backA.headers["ratelimit"]).toMatch(/^limit=4, remaining=3/)
    expect(a.output()).toContain("rate-limit backend redis is back")
    const readyAfter = await send(a.port, "/health/readiness")
    expect(readyAfter.json["details"]).toBeUndefined()
  })
})

describe("rate limiting, redis backend hung (process stopped, connection still open)", () => {
  let origin: Origin
  let redis: RunningRedis
  let a: StartedProgram
  let b: RunningProxy
  const limits = (onError: "allow" | "deny", url: string) => redisLimits(onError, url, { burst: 50, redis_timeout: "200ms" })
  beforeAll(async () => {
    origin = await startOrigin()
    redis = await startRedis()
    a = await startProgram(["--config", writeTempConfig(
      `server: {port: 0}\nrouting: {default_backend: "${origin.url}"}\nlogging: {format: json, level: info}\n` +
        `metrics: {enabled: false}\n` +
        `security:\n  filters_file: ""\n  rate_limiting: ${JSON.stringify(limits("allow", redis.url))}\n`
    )])
    b = await startProxy({
      routing: { default_backend: origin.url },
      security: { filters_file: "", rate_limiting: limits("deny", redis.url) }
    })
  })
  afterAll(async () => {
    redis.thaw()
    await b.stop()
    a.child.kill("SIGKILL")
    await redis.stop()
    await origin.close()
  })

  it("threat: a hung limiter backend stalls every request — redis_timeout applies: allow serves, deny answers 503; warning, readiness detail; recovery", async () => {
    // both instances reach Redis first: the limit applies
    expect((await send(a.port, "/r", { localAddress: "127.0.0.2" })).headers["ratelimit"]).toMatch(/^limit=50, remaining=49/)
    expect((await send(b.port, "/r", { localAddress: "127.0.0.3" })).headers["ratelimit"]).toMatch(/^limit=50, remaining=49/)

    redis.freeze()
    // A (allow): every request is served, unlimited (no RateLimit headers), none waits for Redis
    const served = await Promise.all(Array.from({ length: 10 }, () => send(a.port, "/r", { localAddress: "127.0.0.2" })))
    expect(served.map((r) => r.status)).toEqual(Array(10).fill(200))
    expect(served.every((r) => r.headers["ratelimit"] === undefined)).toBe(true)
    // B (deny): 503 + Retry-After, the first request (that met the timeout) and the later ones alike
    for (let i = 0; i < 3; i++) {
      const denied = await send(b.port, "/r", { localAddress: "127.0.0.3" })
      expect(denied.status).toBe(503)
      expect(denied.json["error"]).toBe("rate_limiter_unavailable")
      expect(denied.headers["retry-after"]).toBe("1")
    }
    // the warning names the cause; readiness shows it; the proxy itself stays live and ready
    expect(a.output()).toContain("rate-limit backend redis unavailable")
    expect(a.output()).toContain("did not answer within 200ms")
    for (const port of [a.port, b.port]) {
      const ready = await send(port, "/health/readiness")
      expect(ready.status).toBe(200)
      expect((ready.json["details"] as Record<string, string>)["rate_limit_backend"]).toContain("did not answer within 200ms")
      expect((await send(port, "/health/liveness")).status).toBe(200)
    }

    redis.thaw()
    // Redis answers again: limits apply again (the budget spent before the freeze is still there; the
    // commands that timed out ran late, so they may have taken a token each too)
    const back = await eventually(() => send(b.port, "/r", { localAddress: "127.0.0.3" }), (r) => r.status === 200)
    expect(back.headers["ratelimit"]).toMatch(/^limit=50, remaining=(4[0-8]|[1-3]\d)\b/)
    const backA = await eventually(() => send(a.port, "/r", { localAddress: "127.0.0.2" }), (r) => r.headers["ratelimit"] !== undefined)
    expect(backA.headers["ratelimit"]).toMatch(/^limit=50, remaining=(4[0-8]|[1-3]\d)\b/)
    expect(a.output()).toContain("rate-limit backend redis is back")
    expect((await send(b.port, "/health/readiness")).json["details"]).toBeUndefined()
  })
})

/**
 * A TCP relay to Redis whose `mute()` makes the connections it carries answer nothing while they stay
 * open (a hung server behind a proxy, a half-open path after a failover); new connections work.
 */
const startMutingRelay = async (target: number) => {
  const muted = new Set<Socket>()
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(target, "127.0.0.1")
    sockets.add(client).add(upstream)
    client.on("data", (d: Buffer) => { if (!muted.has(client)) upstream.write(d) })
    upstream.on("data", (d: Buffer) => { if (!muted.has(client)) client.write(d) })
    for (const s of [client, upstream]) {
      s.on("error", () => {})
      s.on("close", () => { client.destroy(); upstream.destroy() })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    mute: () => { for (const s of sockets) muted.add(s) },
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

describe("rate limiting, redis connection silent but open", () => {
  it("threat: a half-open Redis path — the limiter replaces a connection that answers nothing (it stayed 'down' for good, 503 with deny)", async () => {
    const origin = await startOrigin()
    const redis = await startRedis()
    const relay = await startMutingRelay(Number(new URL(redis.url).port))
    const proxy = await startProxy({
      routing: { default_backend: origin.url },
      security: { filters_file: "", rate_limiting: redisLimits("deny", relay.url, { burst: 50, redis_timeout: "200ms" }) }
    })
    try {
      expect((await send(proxy.port, "/r", { localAddress: "127.0.0.4" })).headers["ratelimit"]).toMatch(/^limit=50/)
      relay.mute()
      expect((await send(proxy.port, "/r", { localAddress: "127.0.0.4" })).status).toBe(503)
      // the muted connection never answers nor drops: after 4 × redis_timeout (at least 1 s) a new one is made
      const back = await eventually(() => send(proxy.port, "/r", { localAddress: "127.0.0.4" }), (r) => r.status === 200)
      expect(back.status).toBe(200)
      expect(back.headers["ratelimit"]).toMatch(/^limit=50/)
    } finally {
      await proxy.stop()
      await relay.close()
      await redis.stop()
      await origin.close()
    }
  })
})
