/**
 * Config values that decoded but could not work are refused at decode, with the key path, the value
 * and what is expected: URLs the router / Redis client / OTLP exporter cannot parse, listen hosts that
 * are not an address or a name, timer durations past Node's 2^31 ms limit, port 0 as a CONNECT port,
 * bearer tokens no Authorization header can carry, numbers that are NaN, infinite or out of their
 * range (the message states the range), and a timeout of 0.
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
    assertRefused({ server: { timeouts: { read: "30d" } } }, "server.timeouts.read", /got "30d"; expected a duration from 1ms to 24d/)
    assertRefused({ server: { timeouts: { idle: 2_147_484 } } }, "server.timeouts.idle", /to 24d/)
    assertRefused({ cli: { process_timeout: "25d" } }, "cli.process_timeout", /to 24d/)
    assertRefused({ upstream: { keepalive_timeout: "600h" } }, "upstream.keepalive_timeout", /to 24d/)
    assertRefused({ security: { rate_limiting: { redis_timeout: "30d" } } }, "security.rate_limiting.redis_timeout", /to 24d/)
    assertRefused({ server: { timeouts: { shutdown_grace: "25d" } } }, "server.timeouts.shutdown_grace", /from 0 \(no grace: at once\) to 24d/)
  })
  it("24d is accepted; cache.default_ttl (a freshness lifetime, no timer) may be longer", () => {
    assertAccepted({ server: { timeouts: { read: "24d", write: "24d", idle: "24d", connect: "24d", shutdown_grace: "24d" } } })
    assertAccepted({ cache: { default_ttl: "365d" } })
  })
})

describe("server.connect.allowed_ports: 1-65535", () => {
  it("port 0 (or 65536) is refused; 1 and 65535 are fine", () => {
    assertRefused({ server: { connect: { allowed_ports: [0] } } }, "server.connect.allowed_ports.0", /a port from 1 to 65535/)
    assertRefused({ server: { connect: { allowed_ports: [443, 65536] } } }, "server.connect.allowed_ports.1", /a port from 1 to 65535/)
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

describe("numbers: NaN, infinities, negatives and absurd magnitudes are refused with the range named", () => {
  it("threat: RATE_LIMIT_RPS=Infinity (or YAML .inf) turned every request into a 429 with remaining=NaN", () => {
    const key = "security.rate_limiting.requests_per_second"
    for (const bad of [Infinity, -Infinity, NaN, 0, -1, 1e-300, 0.0009, 1_000_001, 1e300, "fast"]) {
      assertRefused({ security: { rate_limiting: { requests_per_second: bad } } }, key, /expected a rate in requests per second from 0\.001 to 1000000 .*enabled: false/)
    }
    for (const good of [0.001, 0.5, 100, 1_000_000]) assertAccepted({ security: { rate_limiting: { requests_per_second: good } } })
  })

  it("draft-ietf-httpapi-ratelimit-headers: burst and max_clients stay integers a header and a Map can hold", () => {
    for (const bad of [0, 1.5, Infinity, NaN, 1e10]) {
      assertRefused({ security: { rate_limiting: { burst: bad } } }, "security.rate_limiting.burst", /from 1 to 1000000000/)
    }
    assertRefused({ security: { rate_limiting: { max_clients: 2 ** 24 + 1 } } }, "security.rate_limiting.max_clients", /from 1 to 16777216 .*2\^24/)
    assertAccepted({ security: { rate_limiting: { burst: 1_000_000_000, max_clients: 2 ** 24 } } })
  })

  // every number-valued key: a non-finite, negative or huge value is refused, and the message states the range
  const keys: ReadonlyArray<readonly [string, (v: unknown) => unknown, RegExp]> = [
    ["server.port", (v) => ({ server: { port: v } }), /a port from 0 to 65535/],
    ["metrics.port", (v) => ({ metrics: { port: v } }), /a port from 0 to 65535/],
    ["cli.max_concurrent", (v) => ({ cli: { max_concurrent: v } }), /from 1 to 10000/],
    ["compression.gzip_level", (v) => ({ compression: { gzip_level: v } }), /a level from 1 to 9/],
    ["upstream.max_connections_per_origin", (v) => ({ upstream: { max_connections_per_origin: v } }), /from 0 to 65535 \(0 = no limit\)/],
    ["upstream.pipelining", (v) => ({ upstream: { pipelining: v } }), /from 1 to 64/],
    ["tracing.sample_ratio", (v) => ({ tracing: { sample_ratio: v } }), /a ratio from 0 to 1/],
    ["server.timeouts.connect", (v) => ({ server: { timeouts: { connect: v } } }), /a duration from 1ms to 24d/],
    ["cli.kill_grace", (v) => ({ cli: { kill_grace: v } }), /a duration from 0 \(no grace: at once\) to 24d/],
    ["cache.default_ttl", (v) => ({ cache: { default_ttl: v } }), /a duration from 0 \(off\) to 24855d/],
    ["server.limits.max_body_bytes", (v) => ({ server: { limits: { max_body_bytes: v } } }), /a size .* from 0 to 2\^53-1 bytes/],
    ["cache.max_memory", (v) => ({ cache: { max_memory: v } }), /a size .* from 0 to 2\^53-1 bytes/]
  ]
  for (const [key, at, range] of keys) {
    it(`${key}: NaN, ±Infinity, -1 and 1e300 are refused, naming the range`, () => {
      for (const bad of [NaN, Infinity, -Infinity, -1, 1e300]) assertRefused(at(bad), key, range)
    })
  }

  it("sizes and durations written with units may not overflow either", () => {
    assertRefused({ cache: { max_memory: "99999999999GB" } }, "cache.max_memory", /2\^53-1 bytes/)
    assertRefused({ cache: { default_ttl: "99999999999999999999d" } }, "cache.default_ttl", /to 24855d/)
    assertAccepted({ cache: { max_memory: "1024GB", default_ttl: "24855d" } })
  })

  it("a value of the wrong type states the range, not the schema's \"number | undefined\"", () => {
    for (const bad of ["abc", "-1", "8080.5", true]) {
      const e = refusal({ server: { port: bad } })
      assert.isDefined(e)
      assert.match(e!.message, /expected a port from 0 to 65535 \(0 = any free port\)/)
      assert.notInclude(e!.message, "undefined")
    }
    assertRefused({ tracing: { sample_ratio: "half" } }, "tracing.sample_ratio", /a ratio from 0 to 1/)
    assertRefused({ server: { timeouts: { read: true } } }, "server.timeouts.read", /a duration from 1ms to 24d/)
  })
})

describe("what a duration of 0 means is fixed per kind of key", () => {
  it("a timeout of 0 is refused, naming the key (cli.process_timeout: 0s killed every command at once; read: 0s disabled the head timeout)", () => {
    const timeouts: ReadonlyArray<readonly [string, unknown]> = [
      ["server.timeouts.connect", { server: { timeouts: { connect: "0s" } } }],
      ["server.timeouts.read", { server: { timeouts: { read: "0s" } } }],
      ["server.timeouts.write", { server: { timeouts: { write: 0 } } }],
      ["server.timeouts.idle", { server: { timeouts: { idle: "0ms" } } }],
      ["cli.process_timeout", { cli: { process_timeout: "0s" } }],
      ["cli.process_timeout", { cli: { process_timeout: "0.4ms" } }],
      ["upstream.keepalive_timeout", { upstream: { keepalive_timeout: 0 } }],
      ["security.rate_limiting.redis_timeout", { security: { rate_limiting: { redis_timeout: "0s" } } }]
    ]
    for (const [key, input] of timeouts) assertRefused(input, key, /from 1ms to 24d.*not 0: this timeout cannot be turned off/)
    assertAccepted({ server: { timeouts: { connect: "1ms", read: "1ms", write: "1ms", idle: "1ms" } }, cli: { process_timeout: "1ms" } })
  })

  it("a grace period of 0 means none (act at once); cache.default_ttl 0 means no heuristic freshness", () => {
    assertAccepted({ server: { timeouts: { shutdown_grace: "0s" } }, cli: { kill_grace: 0 }, cache: { default_ttl: 0 } })
  })
})
