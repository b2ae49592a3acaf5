/**
 * Requests the proxy answers itself still pass the guards a client meets elsewhere (issue 4):
 *  - threat: bearer-token guessing on /admin/* and /cli/execute — each attempt spends the client's
 *    rate-limit budget, as a failed proxy-auth attempt does (then 429, nothing checked);
 *  - RFC 9110 §7.6.2: a Max-Forwards: 0 OPTIONS / TRACE makes the proxy the final recipient, but only
 *    once the domain filter, the rate limit and proxy auth let it through (Squid checks access first).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import bcrypt from "bcryptjs"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"
import { basic, send } from "../fixtures/client.ts"

const limits = { enabled: true, requests_per_second: 0.01, burst: 3, exempt: [] }

describe("control endpoints and Max-Forwards: 0 behind the guards", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({
      routing: { default_backend: origin.url },
      cli: { enabled: true, auth_token: "right-token", allowed_commands: ["/bin/echo"] },
      security: {
        filters_file: "",
        admin_token: "right-token",
        rate_limiting: limits,
        filtering: { domains: { blocked: ["blocked.example"] } },
        proxy_auth: { users: { alice: bcrypt.hashSync("wonderland", 4) } }
      }
    })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })

  it("threat: admin token guessing spends the client's budget — three 401s, then 429", async () => {
    const statuses: Array<number> = []
    for (let i = 0; i < 4; i++) {
      statuses.push((await send(proxy.port, "/admin/status", { localAddress: "127.0.0.21", headers: { authorization: `Bearer guess-${i}` } })).status)
    }
    expect(statuses).toEqual([401, 401, 401, 429])
  })

  it("threat: CLI token guessing spends the client's budget — three 401s, then 429 (nothing run)", async () => {
    const statuses: Array<number> = []
    for (let i = 0; i < 4; i++) {
      const r = await send(proxy.port, "/cli/execute", {
        method: "POST",
        localAddress: "127.0.0.22",
        headers: { authorization: `Bearer guess-${i}`, "content-type": "application/json" },
        body: JSON.stringify({ command: "echo", args: ["hi"] })
      })
      statuses.push(r.status)
    }
    expect(statuses).toEqual([401, 401, 401, 429])
  })

  it("RFC 9110 §7.6.2: TRACE with Max-Forwards: 0 to a blocked domain is refused (403), not echoed", async () => {
    const r = await send(proxy.port, "http://blocked.example/t", {
      method: "TRACE",
      localAddress: "127.0.0.23",
      headers: { "max-forwards": "0", "proxy-authorization": basic("alice", "wonderland") }
    })
    expect(r.status).toBe(403)
  })

  it("RFC 9110 §7.6.2: OPTIONS with Max-Forwards: 0 through the forward proxy needs proxy credentials (407), then is answered", async () => {
    const bare = await send(proxy.port, "http://allowed.example/o", { method: "OPTIONS", localAddress: "127.0.0.24", headers: { "max-forwards": "0" } })
    expect(bare.status).toBe(407)
    const authed = await send(proxy.port, "http://allowed.example/o", {
      method: "OPTIONS",
      localAddress: "127.0.0.24",
      headers: { "max-forwards": "0", "proxy-authorization": basic("alice", "wonderland") }
    })
    expect(authed.status).toBe(200)
    expect(authed.headers["allow"]).toContain("OPTIONS")
  })

  it("RFC 9110 §7.6.2: Max-Forwards: 0 requests spend the rate-limit budget like any other", async () => {
    const statuses: Array<number> = []
    for (let i = 0; i < 4; i++) {
      statuses.push((await send(proxy.port, "/mf", { method: "OPTIONS", localAddress: "127.0.0.25", headers: { "max-forwards": "0" } })).status)
    }
    expect(statuses).toEqual([200, 200, 200, 429])
  })
})
