import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type Origin, startOrigin } from "../fixtures/origins.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

describe("reverse proxy smoke", () => {
  let origin: Origin
  let proxy: RunningProxy
  beforeAll(async () => {
    origin = await startOrigin()
    proxy = await startProxy({ routing: { default_backend: origin.url } })
  })
  afterAll(async () => {
    await proxy.stop()
    await origin.close()
  })
  it("forwards an origin-form GET to the default backend", async () => {
    const res = await fetch(`${proxy.url}/hello?x=1`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as { url: string; headers: Record<string, string> }
    expect(body.url).toBe("/hello?x=1")
    expect(body.headers.via).toBe("1.1 gatehouse")
    expect(proxy.entries().at(-1)?.status).toBe(200)
  })
})
