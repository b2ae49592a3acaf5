import { assert, describe, it } from "@effect/vitest"
import { policyHeader, quotaWindow } from "../../src/domain/tokenBucket.ts"

describe("RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers: the quota is an Integer)", () => {
  it("a whole rate per second is its own quota over w=1", () => {
    assert.strictEqual(policyHeader({ rate: 100, burst: 200 }), "100;w=1;burst=200")
  })

  it("a fractional rate becomes a whole quota over the shortest window that makes it whole", () => {
    assert.deepStrictEqual(quotaWindow(0.5), { quota: 1, window: 2 })
    assert.deepStrictEqual(quotaWindow(1.5), { quota: 3, window: 2 })
    assert.deepStrictEqual(quotaWindow(0.3), { quota: 3, window: 10 })
    assert.deepStrictEqual(quotaWindow(0.01), { quota: 1, window: 100 })
    assert.strictEqual(policyHeader({ rate: 0.5, burst: 3 }), "1;w=2;burst=3")
  })

  it("a rate no window up to an hour makes whole is rounded down, never to a zero quota", () => {
    const { quota, window } = quotaWindow(1 / 7000)
    assert.strictEqual(quota, 1)
    assert.strictEqual(window, 7000)
    for (const rate of [Math.PI, 1 / 3, 0.0001, 12.345678]) {
      const q = quotaWindow(rate)
      assert.isTrue(Number.isInteger(q.quota) && q.quota >= 1 && Number.isInteger(q.window) && q.window >= 1, `${rate}: ${JSON.stringify(q)}`)
      assert.isAtMost(q.quota / q.window, rate + 1e-9)
    }
  })
})
