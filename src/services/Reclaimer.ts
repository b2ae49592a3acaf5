/**
 * Gives relayed socket buffers back while they are young.
 *
 * Every socket read allocates its own Buffer outside the V8 heap (external memory). A tunnel moving
 * hundreds of MB/s allocates those far faster than it allocates JS objects, so the young generation
 * rarely fills and the dead buffers wait for a full mark-compact, which V8 starts when external
 * memory has grown by tens of MB: about 26 of them per 2 GB relayed. A mark-compact costs in
 * proportion to the live heap — Gatehouse's ~30 MB then, before the bundle (Effect, schemas,
 * OpenTelemetry, undici), against a raw `socket.pipe` proxy's ~5 MB — so the tunnel spent 2.5–3.5× the raw proxy's user CPU per byte
 * and ran at ~0.75× its throughput (bench/README.md, "Tunnels: the heap, not the stream").
 *
 * A young-generation collection (scavenge) frees the same buffers for a cost in proportion to the
 * live *young* objects only. So the byte paths report what they relay, and once `every` bytes have
 * passed without any collection one scavenge is forced (`gc({ type: "minor" })`, made available by setting `--expose-gc` and reading
 * `gc` from a fresh `vm` context: nothing is added to the application's global scope). Measured on
 * 2 GB tunnel transfers: user CPU per GB 2.5–3.5× lower, throughput at the raw pipe's level; one
 * scavenge per 8 or 32 MiB measured the same, one per 128 MiB was as slow as none (the mark-compact
 * comes first). HTTP bodies had the same pattern (a 1 GiB upload or download through the reverse
 * proxy: 10–13 mark-compacts, none with the Reclaimer), so the body paths report their chunks too:
 * tunnels (`http/socketBridge.ts`), responses (`ClientSink`) and request bodies that are chunked or
 * at least 1 MiB (`http/phases/upstream.ts`).
 *
 * A forced scavenge that comes while V8 is marking the old generation finishes that marking (a full
 * collection). After a burst of requests the memory reducer leaves the old generation's limit just
 * above the live heap, and a tunnel's steady promotions then started marking 10–15 times a second;
 * `npm start`'s `--initial-old-space-size=32` keeps the limit at 32 MB or more (README "Performance
 * and tuning").
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { PerformanceObserver } from "node:perf_hooks"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

/** Bytes relayed between two collections before one is forced. */
export const RECLAIM_EVERY_BYTES = 16 * 1024 * 1024

export interface ReclaimerStats {
  /** Bytes reported by the byte paths since start. */
  readonly relayedBytes: number
  /** Scavenges forced so far. */
  readonly forced: number
}

export class Reclaimer extends Context.Service<Reclaimer, {
  /**
   * Count bytes relayed on a byte path (one call per chunk, a plain function: it runs on the byte
   * path, where no per-chunk Effect belongs). Forces a scavenge once `every` bytes have passed
   * without any collection.
   */
  readonly relayed: (bytes: number) => void
  readonly stats: () => ReclaimerStats
}>()("gatehouse/Reclaimer") {
  /**
   * Live: real scavenges (a no-op if the runtime offers no `gc`). V8's own collections are watched
   * (a `gc` PerformanceObserver): any collection frees what was relayed before it, so the count
   * starts again and a scavenge is forced only when V8 has not run one for RECLAIM_EVERY_BYTES.
   */
  static readonly layer = Layer.effect(
    Reclaimer,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const reclaimer = makeReclaimer(RECLAIM_EVERY_BYTES, minorGc())
          const observer = new PerformanceObserver(reclaimer.collected)
          observer.observe({ entryTypes: ["gc"] })
          return { reclaimer, observer }
        }),
        ({ observer }) => Effect.sync(() => observer.disconnect())
      ),
      ({ reclaimer }) => reclaimer.service
    )
  )
}

/** The counter, with the collection it triggers passed in; `collected` tells it a collection ran. */
export const makeReclaimer = (every: number, collect: () => void) => {
  let pending = 0
  let relayedBytes = 0
  let forced = 0
  const service = Reclaimer.of({
    relayed: (bytes) => {
      relayedBytes += bytes
      pending += bytes
      if (pending < every) return
      pending = 0
      forced++
      collect()
    },
    stats: () => ({ relayedBytes, forced })
  })
  return { service, collected: () => { pending = 0 } }
}

/** V8's young-generation collection, synchronous; a no-op where `gc` cannot be had. */
export const minorGc = (): () => void => {
  setFlagsFromString("--expose-gc")
  const gc: unknown = runInNewContext("typeof gc === 'function' ? gc : undefined")
  if (typeof gc !== "function") return () => {}
  return () => { gc({ type: "minor" }) }
}
