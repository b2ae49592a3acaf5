/**
 * SSRF guard for the forward proxy and CONNECT. A target name is resolved ONCE (all addresses), every
 * address is checked, and the caller dials the checked address itself (not the name), so a DNS answer
 * that changes between check and connect (rebinding) cannot reach a refused address. Refused by
 * default: loopback, link-local (169.254.0.0/16: cloud metadata), unspecified, and this proxy's own
 * listeners (always, a request loop); `security.allow_private_destinations` lets CIDRs through.
 * Reverse-proxy backends come from config and are trusted: they never pass through here.
 *
 * Answers are cached for `DNS_TTL_MS` (positive answers only, at most `DNS_MAX` names, oldest out
 * first), like Squid's ipcache or nginx's `resolver valid=`: a forward proxy would otherwise send a
 * getaddrinfo through libuv's small thread pool for every request. The verdict is still taken per
 * request on the cached addresses, and the caller still dials the address that was checked.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { lookup } from "node:dns/promises"
import { isIP } from "node:net"
import { networkInterfaces } from "node:os"
import { Forbidden, UpstreamError } from "../domain/errors.ts"
import { ipRanges, PRIVATE_DESTINATIONS, unmapV4 } from "../domain/ipRanges.ts"
import { Config } from "./Config.ts"

const RULE = "security.allow_private_destinations"
const DNS_TTL_MS = 10_000
const DNS_MAX = 4096

/** dns.lookup with every address, in the resolver's order. */
export type Lookup = (hostname: string) => Promise<ReadonlyArray<{ readonly address: string }>>
const systemLookup: Lookup = (hostname) => lookup(hostname, { all: true, order: "verbatim" })

export class DestinationGuard extends Context.Service<DestinationGuard, {
  /** Resolves `hostname` and checks it: the IP address to dial, or Forbidden (403) / UpstreamError dns (502). */
  readonly resolve: (hostname: string, port: number) => Effect.Effect<string, Forbidden | UpstreamError>
  /** The listener tells the guard its bound port (port 0 in config → the real one). */
  readonly addListener: (port: number) => void
  /** Ports this proxy listens on (for the pipeline's "request names the proxy itself" check). */
  readonly listenPorts: ReadonlySet<number>
}>()("gatehouse/DestinationGuard") {
  static readonly layerWith = (allowCidrs: ReadonlyArray<string>, resolver: Lookup = systemLookup) =>
    Layer.effect(DestinationGuard, Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const answers = new Map<string, { readonly addresses: ReadonlyArray<{ readonly address: string }>; readonly expires: number }>()
      const remember = (hostname: string, addresses: ReadonlyArray<{ readonly address: string }>) => {
        answers.delete(hostname)
        if (answers.size >= DNS_MAX) answers.delete(answers.keys().next().value!)
        answers.set(hostname, { addresses, expires: clock.currentTimeMillisUnsafe() + DNS_TTL_MS })
      }
      const refused = ipRanges(PRIVATE_DESTINATIONS)
      const allowed = ipRanges(allowCidrs)
      const loopback = ipRanges(["127.0.0.0/8", "::1/128"])
      const listenPorts = new Set<number>()
      const local = new Set<string>(["0.0.0.0", "::"])
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) local.add(a.address)
      const isSelf = (ip: string, port: number) =>
        listenPorts.has(port) && (local.has(ip) || loopback.has(ip))
      const verdict = (ip: string, port: number, name: string): Forbidden | undefined => {
        const addr = unmapV4(ip)
        if (isSelf(addr, port)) {
          return new Forbidden({ reason: `destination ${name} (${addr}) is this proxy's own listener`, rule: "ssrf.self" })
        }
        if (refused.has(addr) && !allowed.has(addr)) {
          return new Forbidden({ reason: `destination ${name} resolves to ${addr}, a loopback/link-local address`, rule: RULE })
        }
        return undefined
      }
      return DestinationGuard.of({
        addListener: (port) => { listenPorts.add(port) },
        listenPorts,
        resolve: (hostname, port) => {
          if (isIP(hostname) !== 0) {
            const refusal = verdict(hostname, port, hostname)
            return refusal === undefined ? Effect.succeed(unmapV4(hostname)) : Effect.fail(refusal)
          }
          const judge = (addresses: ReadonlyArray<{ readonly address: string }>): Effect.Effect<string, Forbidden> => {
            let first: Forbidden | undefined
            for (const a of addresses) {
              const refusal = verdict(a.address, port, hostname)
              if (refusal === undefined) return Effect.succeed(unmapV4(a.address))
              first ??= refusal
            }
            return Effect.fail(first ?? new Forbidden({ reason: `destination ${hostname} has no address`, rule: RULE }))
          }
          const hit = answers.get(hostname)
          if (hit !== undefined && hit.expires > clock.currentTimeMillisUnsafe()) return judge(hit.addresses)
          return Effect.flatMap(
            Effect.tryPromise({
              try: () => resolver(hostname),
              catch: (cause) => new UpstreamError({ reason: "dns", upstream: `${hostname}:${port}`, responseStarted: false, cause })
            }),
            (addresses) => {
              remember(hostname, addresses)
              return judge(addresses)
            }
          )
        }
      })
    }))

  static readonly layer = Layer.unwrap(Effect.map(Config, (c) => DestinationGuard.layerWith(c.security.allow_private_destinations)))
}
