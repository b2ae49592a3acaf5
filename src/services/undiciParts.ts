/**
 * The parts of undici Gatehouse uses: the keep-alive Agent (HTTP/1.1 pools per origin), the Pool and
 * Client it makes (built directly for the configured backends), the Upgrade call, and the dispatch
 * option through which a pool hands a waiting request's cancel function to its handler (what undici's
 * own `signal` support uses). Loaded module by module rather than from undici's index, which loads all of undici
 * (fetch, WebSocket, cache stores, mocks) and with it ~30 Node built-ins the proxy never calls
 * (zlib, dns, perf_hooks, worker_threads, web streams, sqlite): less start-up work, heap and RSS.
 */
import Agent from "undici/lib/dispatcher/agent.js"
import Client from "undici/lib/dispatcher/client.js"
import Pool from "undici/lib/dispatcher/pool.js"
import upgrade from "undici/lib/api/api-upgrade.js"
import symbols from "undici/lib/core/symbols.js"

/** (A property read: Node's CommonJS export detection does not see this module's named exports.) */
const kQueuedAbort = symbols.kQueuedAbort

export { Agent, Client, kQueuedAbort, Pool, upgrade }
