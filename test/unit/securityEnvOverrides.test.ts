/** Env overrides for issue 4 keys (RATE_LIMIT_*, ADMIN_TOKEN) → config paths, with their coercions. */
import { describe, expect, it } from "@effect/vitest"
import { applyEnv } from "../../src/domain/config/overrides.ts"

describe("security env overrides", () => {
  it("RATE_LIMIT_* set security.rate_limiting keys, keeping the file's other keys", () => {
    const out = applyEnv(
      { security: { admin_token: "file", rate_limiting: { exempt: [], burst: 9 } } },
      {
        RATE_LIMIT_ENABLED: "false",
        RATE_LIMIT_RPS: "0.5",
        RATE_LIMIT_BURST: "20",
        RATE_LIMIT_BACKEND: "Redis",
        RATE_LIMIT_REDIS_URL: "redis://cache:6379",
        ADMIN_TOKEN: "env-token"
      }
    )
    expect(out).toEqual({
      security: {
        admin_token: "env-token",
        rate_limiting: { exempt: [], enabled: false, requests_per_second: 0.5, burst: 20, backend: "redis", redis_url: "redis://cache:6379" }
      }
    })
  })

  it("bad values stay strings (so the schema reports them); empty variables are ignored", () => {
    expect(applyEnv({}, { RATE_LIMIT_RPS: "fast", RATE_LIMIT_BURST: "1.5", RATE_LIMIT_ENABLED: "" })).toEqual({
      security: { rate_limiting: { requests_per_second: "fast", burst: "1.5" } }
    })
  })
})
