import { describe, expect, it } from "@effect/vitest"
import { compileRoutes, matchRoute } from "../../src/domain/routeTable.ts"

const table = compileRoutes([
  { match: { host: "api.example.com", path_prefix: "/v1" }, forward: { target: "http://api-v1:8080" } },
  { match: { host: "api.example.com" }, forward: { target: "http://api:8080/base/" } },
  { match: { host: "ported.example.com:9000" }, forward: { target: "http://ported:1" } },
  { match: { host: "*.example.com" }, forward: { target: "http://wild:80" } },
  { match: { path_prefix: "/static" }, forward: { target: "https://cdn.internal" } }
], "http://default:8000")

const name = (host: string, path: string) => matchRoute(table, host, path)?.name

describe("route matching", () => {
  it("first matching rule wins (host + path prefix)", () => {
    expect(name("api.example.com", "/v1/users")).toBe("http://api-v1:8080")
    expect(name("api.example.com", "/v2/users")).toBe("http://api:8080/base/")
  })
  it("host match ignores case, port and one trailing dot", () => {
    expect(name("API.Example.COM:8443", "/v1")).toBe("http://api-v1:8080")
    expect(name("api.example.com.", "/x")).toBe("http://api:8080/base/")
  })
  it("*.example.com matches subdomains only, not the apex nor look-alikes", () => {
    expect(name("a.b.example.com", "/")).toBe("http://wild:80")
    expect(name("example.com", "/")).toBe("http://default:8000")
    expect(name("evil-example.com", "/")).toBe("http://default:8000")
  })
  it("path-only rules match any host", () => {
    expect(name("other.test", "/static/app.js")).toBe("https://cdn.internal")
  })
  it("a rule naming a port matches only that port", () => {
    expect(name("ported.example.com:9000", "/")).toBe("http://ported:1")
    expect(name("ported.example.com:9001", "/")).toBe("http://wild:80")
  })
  it("falls back to the default backend, or nothing without one", () => {
    expect(name("unknown.test", "/")).toBe("http://default:8000")
    expect(matchRoute(compileRoutes([], ""), "x", "/")).toBeUndefined()
  })
  it("keeps the target's base path, origin and Host", () => {
    const b = matchRoute(table, "api.example.com", "/v2")!
    expect(b.origin).toBe("http://api:8080")
    expect(b.basePath).toBe("/base")
    expect(b.host).toBe("api:8080")
  })
  it("rule and request hosts are normalised alike: a rule's trailing dot, a Host's trailing dot before its port, a rule's default port", () => {
    const t = compileRoutes([
      { match: { host: "Trailing.Example.NET." }, forward: { target: "http://trailing:1" } },
      { match: { host: "*.Wild.Example.NET." }, forward: { target: "http://wild-dot:1" } },
      { match: { host: "port.example.org:8443" }, forward: { target: "http://port:1" } },
      { match: { host: "example.org:80" }, forward: { target: "http://plain:1" } },
      { match: { host: "secure.example.org:443" }, forward: { target: "http://secure:1" } }
    ], "http://default:1")
    const n = (host: string) => matchRoute(t, host, "/")?.name
    expect(n("trailing.example.net")).toBe("http://trailing:1")
    expect(n("trailing.example.net.")).toBe("http://trailing:1")
    expect(n("TRAILING.example.net:81")).toBe("http://trailing:1")
    expect(n("a.wild.example.net.")).toBe("http://wild-dot:1")
    expect(n("wild.example.net")).toBe("http://default:1")
    expect(n("port.example.org.:8443")).toBe("http://port:1")
    expect(n("PORT.example.org:8443")).toBe("http://port:1")
    expect(n("port.example.org")).toBe("http://default:1")
    expect(n("port.example.org:8444")).toBe("http://default:1")
    expect(n("example.org")).toBe("http://plain:1")
    expect(n("example.org.")).toBe("http://plain:1")
    expect(n("example.org:80")).toBe("http://plain:1")
    expect(n("example.org:8080")).toBe("http://default:1")
    expect(n("secure.example.org")).toBe("http://secure:1")
    expect(n("secure.example.org:8443")).toBe("http://default:1")
  })
})
