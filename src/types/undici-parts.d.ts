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
declare module "undici/lib/api/api-upgrade.js" {
  import type { Dispatcher } from "undici"
  function upgrade(this: Dispatcher, options: Dispatcher.UpgradeOptions, callback: (err: Error | null, data: Dispatcher.UpgradeData) => void): void
  export = upgrade
}
