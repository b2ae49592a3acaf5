/**
 * Clients that give up at every stage of an exchange, against a pool capped at a few connections:
 * before their request reaches a connection, while the origin thinks, while they upload a body, and
 * after they stopped reading a large response. Whatever they did, the pool must end idle (no request
 * running or queued) and serve the next client at once. A seeded generator fixes the sequence, so a
 * failure repeats.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { createServer, type Server } from "node:http"
import { connect } from "node:net"
import type { AddressInfo } from "node:net"
import { sample, scrape } from "../fixtures/metrics.ts"
import { type RunningProxy, startProxy } from "../fixtures/proxy.ts"

/** mulberry32: a small seeded generator, so the run is the same every time. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}


type Leave = "early" | "stops_reading" | "mid_upload" | "stays"
type Outcome = Leave | "stuck"

describe("clients leaving at every stage of an exchange, pool capped at 4 connections", () => {
  let origin: Server
  let originUrl: string
  let proxy: RunningProxy
  beforeAll(async () => {
    // ?d=ms before answering, ?s=body bytes (written as fast as the proxy takes them)
    origin = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://origin")
      const delay = Number(url.searchParams.get("d") ?? 0)
      let left = Number(url.searchParams.get("s") ?? 0)
      req.resume()
      req.on("end", () =>
        setTimeout(() => {
          res.writeHead(200, { "content-length": left })
          const chunk = Buffer.alloc(64 * 1024, 97)
          const pump = () => {
            while (left > 0 && !res.destroyed) {
              const n = Math.min(left, chunk.length)
              left -= n
              if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once("drain", pump)
            }
            res.end()
          }
          pump()
        }, delay))
    })
    await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve))
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`
    proxy = await startProxy({ routing: { default_backend: originUrl }, upstream: { max_connections_per_origin: 4 } })
  })
  afterAll(async () => {
    await proxy.stop()
    origin.closeAllConnections()
    await new Promise((resolve) => origin.close(resolve))
  })

  it("after 400 exchanges, a third of them abandoned, the pool is idle and the next request is answered", async () => {
    const random = seeded(20261202)
    const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(random() * xs.length)]!
    const one = (): Promise<Outcome> => {
      const delay = random() < 0.3 ? Math.floor(random() * 60) : 0
      const size = pick([10, 5_000, 200_000, 2_000_000])
      const body = random() < 0.3 ? "x".repeat(Math.floor(random() * 100_000)) : undefined
      const leave = pick<Leave>(body === undefined ? ["early", "stops_reading", "stays", "stays"] : ["early", "mid_upload", "stays", "stays"])
      const after = Math.floor(random() * 40)
      return new Promise((resolve) => {
        const socket = connect(proxy.port, "127.0.0.1")
        // a client that stays gets its whole response within 10 s, or the exchange is stuck
        const stuck = setTimeout(() => {
          socket.destroy()
          resolve("stuck")
        }, 10_000)
        const finish = () => {
          clearTimeout(stuck)
          socket.destroy()
          resolve(leave)
        }
        socket.on("error", finish)
        socket.on("close", finish)
        socket.write(`${body === undefined ? "GET" : "POST"} /?d=${delay}&s=${size} HTTP/1.1\r\nhost: chaos\r\n` +
          (body === undefined ? "\r\n" : `content-length: ${body.length}\r\n\r\n`))
        if (leave === "mid_upload") {
          socket.write(body!.slice(0, body!.length >> 1))
          setTimeout(finish, after)
          return
        }
        if (body !== undefined) socket.write(body)
        if (leave === "early") setTimeout(finish, after)
        if (leave === "stops_reading") {
          socket.pause()
          setTimeout(finish, 50 + after)
        }
        let got = 0
        socket.on("data", (chunk: Buffer) => {
          got += chunk.length
          if (leave === "stays" && got >= size) finish()
        })
      })
    }
    let started = 0
    const outcomes: Array<Outcome> = []
    await Promise.all(Array.from({ length: 24 }, async () => {
      while (started < 400 && !outcomes.includes("stuck")) {
        started++
        outcomes.push(await one())
      }
    }))
    expect(outcomes.filter((o) => o === "stuck")).toEqual([])
    expect(outcomes.filter((o) => o !== "stays").length).toBeGreaterThan(100)
    const gauge = async (name: string) => sample(await scrape(proxy.metricsPort), name)
    await expect.poll(() => gauge("gatehouse_upstream_pool_running_requests"), { timeout: 5000 }).toBe(0)
    expect(await gauge("gatehouse_upstream_pool_queued_requests")).toBe(0)
    const next = await fetch(`${proxy.url}/?d=0&s=10`, { signal: AbortSignal.timeout(3000) })
    expect(next.status).toBe(200)
    expect((await next.text()).length).toBe(10)
  }, 60_000)
})
