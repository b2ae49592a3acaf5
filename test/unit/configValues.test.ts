/**
 * Config values that decoded but could not work are refused at decode, with the key path, the value
 * and what is expected: URLs the router / Redis client / OTLP exporter cannot parse, listen hosts that
 * are not an address or a name, timer durations past Node's 2^31 ms limit, port 0 as a CONNECT port,
 * bearer tokens no Authorization header can carry.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { ConfigError } from "../../src/domain/errors.ts"
import { decodeConfig } from "../../src/services/Config.ts"

/** The ConfigError for `input`, or undefined when it decodes. */
const refusal = (input: unknown): ConfigError | undefined => {
  const exit = Effect.runSyncExit(Effect.flip(decodeConfig(input)))
  return Exit.isSuccess(exit) ? exit.value : undefined
}

const assertRefused = (input: unknown, key: string, expected: RegExp) => {
  const e = refusal(input)
  assert.isDefined(e, `${JSON.stringify(input)} decoded`)
  assert.strictEqual(e!.key, key)
  assert.match(e!.message, expected)
}

const assertAccepted = (input: unknown) => assert.isUndefined(refusal(input), JSON.stringify(input))

describe("URLs are refused at decode when their consumer could not parse them (no start-up TypeError)", () => {
  it("routing.default_backend and rule targets: port 1-65535", () => {
    for (const bad of ["http://127.0.0.1:99999", "http://127.0.0.1:70000", "http://a:0", "http://[::1", "http://a b"]) {
      assertRefused({ routing: { default_backend: bad } }, "routing.default_backend", /http:\/\/host\[:port\].*port 1-65535/)
    }
    assertRefused(
      { routing: { rules: [{ match: { host: "a.com" }, forward: { target: "http://a:123456" } }] } },
      "routing.rules.0.forward.target",
      /got "http:\/\/a:123456"; expected an http\(s\) URL .*port 1-65535/
    )
    for (const good of ["http://127.0.0.1:8000", "https://backend.internal/api/v1", "http://[::1]:65535", "http://b:1", ""]) {
      assertAccepted({ routing: { default_backend: good } })
    }
  })

  it("tracing.otlp_endpoint and the Redis URLs", () => {
    assertRefused({ tracing: { otlp_endpoint: "http://127.0.0.1:99999/v1/traces" } }, "tracing.otlp_endpoint", /port 1-65535/)
    assertRefused({ security: { rate_limiting: { redis_url: "redis://127.0.0.1:99999" } } }, "security.rate_limiting.redis_url", /redis:\/\//)
    assertRefused({ cache: { redis_url: "http://cache:6379" } }, "cache.redis_url", /redis:\/\//)
    assertAccepted({ cache: { redis_url: "rediss://user:pw@cache:6380/2" }, security: { rate_limiting: { redis_url: "redis://127.0.0.1" } } })
  })
})

describe("listen hosts: an IP literal or a host name", () => {
  it("server.host and metrics.host refuse anything listen() could only fail on", () => {
    for (const bad of ["not a host!", "[::1]", "http://x", "300.1.1.1", "-a.example", "a..b", ""]) {
      assertRefused({ server: { host: bad } }, "server.host", /expected an IP address .* or a host name/)
    }
    assertRefused({ metrics: { host: "no such host" } }, "metrics.host", /expected an IP address/)
    for (const good of ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "proxy.internal", "my_service", "host.example."]) {
      assertAccepted({ server: { host: good } })
    }
  })
})

describe("timer durations: at most 24d (Node.js timers cannot wait 2^31 ms)", () => {
  it("30d, or 2^31 ms given in seconds, is refused with the maximum named", () => {
    assertRefused({ server: { timeouts: { read: "30d" } } }, "server.timeouts.read", /got "30d"; expected a duration of at most 24d/)
    assertRefused({ server: { timeouts: { idle: 2_147_484 } } }, "server.timeouts.idle", /at most 24d/)
    assertRefused({ cli: { process_timeout: "25d" } }, "cli.process_timeout", /at most 24d/)
    assertRefused({ upstream: { keepalive_timeout: "600h" } }, "upstream.keepalive_timeout", /at most 24d/)
    assertRefused({ security: { rate_limiting: { redis_timeout: "30d" } } }, "security.rate_limiting.redis_timeout", /at most 24d/)
  })
  it("24d is accepted; cache.default_ttl (a freshness lifetime, no timer) may be longer", () => {
    assertAccepted({ server: { timeouts: { read: "24d", write: "24d", idle: "24d", connect: "24d", shutdown_grace: "24d" } } })
    assertAccepted({ cache: { default_ttl: "365d" } })
  })
})

describe("server.connect.allowed_ports: 1-65535", () => {
  it("port 0 (or 65536) is refused; 1 and 65535 are fine", () => {
    assertRefused({ server: { connect: { allowed_ports: [0] } } }, "server.connect.allowed_ports.0", /between 1 and 65535/)
    assertRefused({ server: { connect: { allowed_ports: [443, 65536] } } }, "server.connect.allowed_ports.1", /between 1 and 65535/)
    assertAccepted({ server: { connect: { allowed_ports: [1, 443, 65535] } } })
  })
})

describe("bearer tokens: RFC 6750 §2.1 b64token or empty", () => {
  it("a token with a space, quote or non-ASCII letter is refused, and not echoed", () => {
    for (const bad of ["pass word", " lead", "trail ", "quo\"te", "tök", "a=b", "tab\there"]) {
      const e = refusal({ security: { admin_token: bad } })
      assert.isDefined(e, bad)
      assert.strictEqual(e!.key, "security.admin_token")
      assert.match(e!.message, /RFC 6750/)
      assert.notInclude(e!.message, JSON.stringify(bad))
      assert.strictEqual(e!.value, `(hidden, ${bad.length} characters)`)
    }
    assertRefused({ cli: { auth_token: "two words" } }, "cli.auth_token", /RFC 6750/)
  })
  it("b64token characters, trailing '=' padding, and \"\" (no token) are accepted", () => {
    for (const good of ["", "s3cret-token", "A.b_c~d+e/f", "dG9rZW4=", "x=="]) {
      assertAccepted({ security: { admin_token: good }, cli: { auth_token: good } })
    }
  })
})
