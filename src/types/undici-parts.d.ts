/**
 * Types for the undici modules Gatehouse loads directly (src/services/undiciParts.ts): undici's
 * index loads all of undici (fetch, WebSocket, cache stores, mocks) and, through them, ~30 Node
 * built-ins the proxy never uses.
 */
declare module "undici/lib/dispatcher/agent.js" {
  import { Agent } from "undici"
  export = Agent
}
declare module "undici/lib/dispatcher/pool.js" {
  import { Pool } from "undici"
  export = Pool
}
declare module "undici/lib/dispatcher/client.js" {
  import { Client } from "undici"
  export = Client
}
declare module "undici/lib/core/symbols.js" {
  const symbols: {
    /**
     * Dispatch option: a function a Pool or Client calls, while the request waits in its queue for a
     * connection, with a function that takes the request out of the queue (the handler then gets
     * `onResponseError`). Called again if the request moves from a Pool's queue to a Client's.
     */
    readonly kQueuedAbort: symbol
    /** A connection's socket → its HTTP/1.1 response parser (client-h1.js `Parser`). */
    readonly kParser: symbol
    /** A Client → its request queue; `kRunningIdx` indexes the request being answered. */
    readonly kQueue: symbol
    readonly kRunningIdx: symbol
    /** A Client → how many of its requests were sent and are not yet answered. */
    readonly kRunning: symbol
  }
  export = symbols
}
