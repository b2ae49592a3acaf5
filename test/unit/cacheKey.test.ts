import { assert, describe, it } from "@effect/vitest"
import { keyMatcher, keyOrigin, keyUrl, requestKey, splitKey } from "../../src/domain/cache/cacheKey.ts"
import { classifyTarget } from "../../src/domain/requestTarget.ts"

const target = (url: string, host?: string) => {
  const t = classifyTarget(url, "GET", host)
  if (t.form !== "origin" && t.form !== "absolute") throw new Error(`not a keyed target: ${url}`)
  return t
}
// (built literally: classifyTarget refuses an invalid Host itself now, and requestKey's own check is under test here)
const reverse = (path: string, host: string, tls = false) => requestKey({ form: "origin", host, path }, host, tls, false)
const forward = (url: string) => requestKey(target(url), undefined, false, false)

describe("cache keys (RFC 9111 §4): what answers the request", () => {
  it("threat: cache poisoning — an absolute URI and an origin-form request with that Host never share a key", () => {
    assert.notStrictEqual(forward("http://127.0.0.1:19302/victim"), reverse("/victim", "127.0.0.1:19302"))
    assert.strictEqual(forward("http://127.0.0.1:19302/victim"), "forward http://127.0.0.1:19302/victim")
    assert.strictEqual(reverse("/victim", "127.0.0.1:19302"), "reverse http://127.0.0.1:19302/victim")
  })

  it("an absolute-form request naming this listener is keyed like the origin-form request routing treats it as", () => {
    const self = requestKey(target("http://127.0.0.1:8080/x?y"), "ignored.example", false, true)
    assert.strictEqual(self, reverse("/x?y", "127.0.0.1:8080"))
  })

  it("reverse keys carry the client's scheme (the target URI of a request on a TLS connection is https, RFC 9112 §3.3)", () => {
    assert.strictEqual(reverse("/p", "shop.example", true), "reverse https://shop.example/p")
    assert.notStrictEqual(reverse("/p", "shop.example", true), reverse("/p", "shop.example", false))
  })

  it("reverse keys keep the Host as routing reads it: lowercased, port kept (a rule may name host:port)", () => {
    assert.strictEqual(reverse("/p", "Shop.Example:80"), "reverse http://shop.example:80/p")
    assert.notStrictEqual(reverse("/p", "shop.example:80"), reverse("/p", "shop.example"))
  })

  it("forward keys: default port dropped and authority lowercased, so equivalent URIs share an entry", () => {
    assert.strictEqual(forward("http://A.example:80/x"), forward("http://a.example/x"))
    assert.strictEqual(forward("https://a.example:443/x"), "forward https://a.example/x")
  })

  it("threat: cache poisoning — a Host that is not an authority (a '/' in it) is not keyed at all", () => {
    assert.strictEqual(reverse("/c", "a.example/b"), undefined)
    assert.strictEqual(reverse("/c", "a.example?b"), undefined)
    assert.strictEqual(reverse("/c", "a.example#b"), undefined)
    assert.isString(reverse("/b/c", "a.example"))
  })

  it("helpers read both namespaces", () => {
    const k = "reverse https://shop.example:8443/a/b?c"
    assert.strictEqual(keyUrl(k), "https://shop.example:8443/a/b?c")
    assert.strictEqual(keyOrigin(k), "reverse https://shop.example:8443")
    assert.deepStrictEqual(splitKey(k), { host: "shop.example:8443", hostname: "shop.example", path: "/a/b?c" })
    const m = keyMatcher("shop.example/a/*")!
    assert.isTrue(m(k))
    assert.isTrue(m("forward http://shop.example/a/x"))
    assert.isFalse(m("forward http://other.example/a/x"))
  })
})
