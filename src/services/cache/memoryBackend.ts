/**
 * In-process backend: one Map in least-recently-used order (a hit moves the entry to the end), bounded
 * by bytes (`cache.max_memory`); the oldest entries are evicted first.
 */
import * as Effect from "effect/Effect"
import { splitKey } from "../../domain/cache/cacheKey.ts"
import type { StoredResponse } from "../../domain/cache/StoredResponse.ts"
import { type CacheBackend, type Found, MISS } from "./CacheBackend.ts"

interface Primary {
  vary: ReadonlyArray<string>
  readonly variants: Set<string>
}

const sameNames = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a.length === b.length && a.every((n, i) => n === b[i])

export const makeMemoryBackend = (maxBytes: number, nowMs: () => number): CacheBackend => {
  const entries = new Map<string, { readonly entry: StoredResponse; readonly expiresAt: number }>()
  const primaries = new Map<string, Primary>()
  let bytes = 0
  let evictions = 0

  const drop = (vk: string, key: string) => {
    const e = entries.get(vk)
    if (e === undefined) return false
    entries.delete(vk)
    bytes -= e.entry.size
    const p = primaries.get(key)
    if (p !== undefined) {
      p.variants.delete(vk)
      if (p.variants.size === 0) primaries.delete(key)
    }
    return true
  }
  const removeAll = (key: string): number => {
    const p = primaries.get(key)
    if (p === undefined) return 0
    let n = 0
    for (const vk of [...p.variants]) if (drop(vk, key)) n++
    return n
  }

  return {
    name: "memory",
    get: (key, signature) => {
      const p = primaries.get(key)
      if (p === undefined) return Effect.succeed(MISS)
      const vk = key + "\u0001" + signature(p.vary)
      const e = entries.get(vk)
      if (e === undefined) return Effect.succeed<Found>({ entry: undefined, uriKnown: true, unavailable: false })
      if (e.expiresAt <= nowMs()) {
        drop(vk, key)
        return Effect.succeed(MISS)
      }
      entries.delete(vk) // LRU touch: move to the end
      entries.set(vk, e)
      return Effect.succeed<Found>({ entry: e.entry, uriKnown: true, unavailable: false })
    },
    put: (entry, retentionMs) =>
      Effect.sync(() => {
        if (entry.size > maxBytes) return false
        let p = primaries.get(entry.key)
        if (p !== undefined && !sameNames(p.vary, entry.vary)) {
          removeAll(entry.key)
          p = undefined
        }
        if (p === undefined) {
          p = { vary: entry.vary, variants: new Set() }
          primaries.set(entry.key, p)
        }
        const vk = entry.key + "\u0001" + entry.variant
        drop(vk, entry.key)
        if (!primaries.has(entry.key)) primaries.set(entry.key, p)
        entries.set(vk, { entry, expiresAt: nowMs() + retentionMs })
        p.variants.add(vk)
        bytes += entry.size
        while (bytes > maxBytes) {
          const oldest = entries.keys().next()
          if (oldest.done === true) break
          const k = oldest.value
          drop(k, k.slice(0, k.indexOf("\u0001")))
          evictions++
        }
        return entries.has(vk)
      }),
    remove: (key) => Effect.sync(() => removeAll(key)),
    purge: (hostMatches, keyMatches) =>
      Effect.sync(() => {
        let n = 0
        for (const key of [...primaries.keys()]) if (hostMatches(splitKey(key).host) && keyMatches(key)) n += removeAll(key)
        return n
      }),
    usage: Effect.sync(() => ({ entries: entries.size, bytes, evictions })),
    available: () => true
  }
}
