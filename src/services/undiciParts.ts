/**
 * The parts of undici Gatehouse uses: the keep-alive Agent (HTTP/1.1 pools per origin), the Pool and
 * Client it makes (built directly for the configured backends), the dispatch option through which a
 * pool hands a waiting request's cancel function to its handler (what undici's own `signal` support
 * uses), and the symbols `undiciInterim.ts` needs to read a connection's parser and its request queue.
 * (Upgrades are dispatched with undici's `upgrade` dispatch option and Gatehouse's own handler,
 * Upstream.ts, not undici's `upgrade()` API, which fails on any answer but 101.)
 * Loaded module by module rather than from undici's index, which loads all of undici
 * (fetch, WebSocket, cache stores, mocks) and with it ~30 Node built-ins the proxy never calls
 * (zlib, dns, perf_hooks, worker_threads, web streams, sqlite): less start-up work, heap and RSS.
 */
import Agent from "undici/lib/dispatcher/agent.js"
import Client from "undici/lib/dispatcher/client.js"
import Pool from "undici/lib/dispatcher/pool.js"
import symbols from "undici/lib/core/symbols.js"

/** (Property reads: Node's CommonJS export detection does not see this module's named exports.) */
const kQueuedAbort = symbols.kQueuedAbort
const kParser = symbols.kParser
const kQueue = symbols.kQueue
const kRunning = symbols.kRunning
const kRunningIdx = symbols.kRunningIdx

export { Agent, Client, kParser, kQueue, kQueuedAbort, kRunning, kRunningIdx, Pool }
