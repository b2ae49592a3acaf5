/**
 * DestinationGuard's DNS answer cache, driven by TestClock: the real system resolver (wrapped to
 * count its calls) answers "localhost"; a failing resolver stands in for a DNS failure, which cannot
 * be produced reliably on this machine (named as a fake).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { lookup } from "node:dns/promises"
import { DestinationGuard, type Lookup } from "../../src/services/DestinationGuard.ts"

const counting = () => {
  const calls: Array<string> = []
  const resolver: Lookup = (hostname) => {
    calls.push(hostname)
    return lookup(hostname, { all: true, order: "verbatim" })
  }
  return { calls, resolver }
}

const outcome = (guard: DestinationGuard["Service"], host: string) =>
  guard.resolve(host, 80).pipe(Effect.match({ onFailure: (e) => e._tag, onSuccess: (ip) => ip }))

describe("DestinationGuard DNS cache (threat: SSRF; performance: one lookup per name per TTL)", () => {
  it.effect("answers are reused for 10 s, the verdict is still taken per request, then the name is looked up again", () => {
    const { calls, resolver } = counting()
    return Effect.gen(function*() {
      const guard = yield* DestinationGuard
      assert.strictEqual(yield* outcome(guard, "localhost"), "Forbidden") // loopback, refused by default
      assert.strictEqual(yield* outcome(guard, "localhost"), "Forbidden")
      assert.deepStrictEqual(calls, ["localhost"])
      yield* TestClock.adjust("11 seconds")
      assert.strictEqual(yield* outcome(guard, "localhost"), "Forbidden")
      assert.deepStrictEqual(calls, ["localhost", "localhost"])
    }).pipe(Effect.provide(DestinationGuard.layerWith([], resolver)))
  })

  it.effect("a cached answer is judged against the allow list of its guard (allowed loopback passes)", () => {
    const { calls, resolver } = counting()
    return Effect.gen(function*() {
      const guard = yield* DestinationGuard
      const first = yield* outcome(guard, "localhost")
      assert.match(first, /^(127\.0\.0\.1|::1)$/)
      assert.strictEqual(yield* outcome(guard, "localhost"), first)
      assert.strictEqual(calls.length, 1)
    }).pipe(Effect.provide(DestinationGuard.layerWith(["127.0.0.0/8", "::1/128"], resolver)))
  })

  it.effect("failed lookups are not cached (failingResolverFake)", () => {
    const calls: Array<string> = []
    const failingResolverFake: Lookup = (hostname) => {
      calls.push(hostname)
      return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }))
    }
    return Effect.gen(function*() {
      const guard = yield* DestinationGuard
      assert.strictEqual(yield* outcome(guard, "gone.example"), "UpstreamError")
      assert.strictEqual(yield* outcome(guard, "gone.example"), "UpstreamError")
      assert.strictEqual(calls.length, 2)
    }).pipe(Effect.provide(DestinationGuard.layerWith([], failingResolverFake)))
  })
})
