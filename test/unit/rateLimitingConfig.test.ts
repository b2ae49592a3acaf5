/** security.rate_limiting CIDR lists are checked at load time (a bad one must not pass --check-config and crash later). */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { RateLimitingSettings } from "../../src/domain/config/rateLimiting.ts"
import { ipRanges } from "../../src/domain/ipRanges.ts"

const decode = Schema.decodeUnknownExit(RateLimitingSettings)

describe("rate_limiting CIDRs", () => {
  it("rejects malformed trusted_proxies / exempt entries", () => {
    for (const bad of ["300.1.1.1/8", "::1/200", "10.0.0.0/33", "not-an-ip", "1.2.3/8"]) {
      expect(decode({ trusted_proxies: [bad] })._tag, bad).toBe("Failure")
      expect(decode({ exempt: [bad] })._tag, bad).toBe("Failure")
    }
  })

  it("every accepted entry builds a matcher (no start-up crash)", () => {
    const good = ["10.0.0.0/8", "::1/128", "192.0.2.1", "::ffff:127.0.0.1/128", "fd00::/8"]
    const exit = decode({ trusted_proxies: good, exempt: good })
    expect(exit._tag).toBe("Success")
    expect(ipRanges(good).has("10.1.2.3")).toBe(true)
  })
})
