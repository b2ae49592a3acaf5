/** node-redis, imported on first use: only a process with a Redis backend configured loads it. */
import type * as Redis from "redis"

export type RedisModule = typeof Redis.default

/**
 * node-redis is a CommonJS package. Its exports object is the dynamic import's `default` both when
 * Node loads it (Node also adds named exports) and in the bundle `npm start` runs (esbuild gives a
 * lazily imported CommonJS chunk only `default`), so it is read from there.
 */
export const importRedis = (): Promise<RedisModule> => import("redis").then((m) => m.default)
