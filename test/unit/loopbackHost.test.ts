import { assert, describe, it } from "@effect/vitest"
import { namesLoopbackHost } from "../../src/domain/loopbackHost.ts"

describe("namesLoopbackHost (threat: DNS rebinding against the token-less control endpoints)", () => {
  it("accepts localhost, 127.0.0.0/8 and [::1], with or without a port, in any case", () => {
    for (const host of ["localhost", "localhost:8080", "LocalHost:1", "127.0.0.1", "127.0.0.1:8080", "127.1.2.3:65535", "127.255.255.255", "[::1]", "[::1]:8080",
      // other spellings of the same names (no rebound page writes them: its Host is its own name)
      "localhost.", "LOCALHOST.:8080", "[0:0:0:0:0:0:0:1]", "[0::1]:8080", "localhost:", "127.0.0.1:", "[::1]:"]) {
      assert.isTrue(namesLoopbackHost("/cli/execute", host), host)
    }
  })

  it("refuses any other name: a rebound attacker.example, lookalikes, other addresses, malformed values", () => {
    for (const host of [
      "attacker.example:8080",
      "attacker.example",
      "localhost.attacker.example",
      "127.0.0.1.attacker.example",
      "127.attacker.example",
      "128.0.0.1",
      "10.0.0.1:8080",
      "127.0.0",
      "127.0.0.1.2",
      "127.0.0.256",
      "127.0..1",
      "[::2]",
      "[::ffff:127.0.0.1]",
      "0.0.0.0",
      "",
      "localhost:notaport",
      "localhost:99999"
    ]) {
      assert.isFalse(namesLoopbackHost("/cli/execute", host), host)
    }
  })

  it("RFC 9112 §3.2.2: an absolute-form target's authority is judged, not Host", () => {
    assert.isTrue(namesLoopbackHost("http://127.0.0.1:8080/admin/status", "attacker.example"))
    assert.isTrue(namesLoopbackHost("http://localhost/cli/execute?x", undefined))
    assert.isFalse(namesLoopbackHost("http://attacker.example:8080/cli/execute", "127.0.0.1:8080"))
  })

  it("no Host (HTTP/1.0) names only the loopback address connected to: accepted", () => {
    assert.isTrue(namesLoopbackHost("/admin/status", undefined))
  })
})
