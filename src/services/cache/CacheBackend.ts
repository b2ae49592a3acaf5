/** Where stored responses live: the small storage interface the Cache service runs over (memory or Redis). */
import type * as Effect from "effect/Effect"
import type { StoredResponse } from "../../domain/cache/StoredResponse.ts"

export interface Found {
  /** The variant selected for the request's headers (§4.1), if any. */
  readonly entry: StoredResponse | undefined
  /** Some response for the URI is stored (a miss is then a vary-miss). */
  readonly uriKnown: boolean
  /** The backend could not answer (Redis down or slow): treat as a miss, do not try to store. */
  readonly unavailable: boolean
}

export interface BackendUsage {
  readonly entries: number
  readonly bytes: number
  readonly evictions: number
}

/** Every method succeeds: a backend failure is reported as "unavailable", never as a request error. */
export interface CacheBackend {
  readonly name: "memory" | "redis"
  /** `signature` turns the stored Vary field names into this request's variant signature (vary.ts). */
  get(key: string, signature: (vary: ReadonlyArray<string>) => string): Effect.Effect<Found>
  /** Stores one variant; a new Vary field set for the URI replaces every older variant. */
  put(entry: StoredResponse, retentionMs: number): Effect.Effect<boolean>
  /** Removes every variant stored for the primary key; returns how many. */
  remove(key: string): Effect.Effect<number>
  /** Removes the entries whose primary key the predicates match; returns how many. */
  purge(hostMatches: (host: string) => boolean, keyMatches: (key: string) => boolean): Effect.Effect<number>
  readonly usage: Effect.Effect<BackendUsage>
  /** False while the backend cannot be reached (readiness detail). */
  readonly available: () => boolean
}

export const MISS: Found = { entry: undefined, uriKnown: false, unavailable: false }
export const UNAVAILABLE: Found = { entry: undefined, uriKnown: false, unavailable: true }
