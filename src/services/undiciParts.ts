/**
 * The parts of undici Gatehouse uses: the keep-alive Agent (HTTP/1.1 pools per origin), the Pool and
 * Client it makes (built directly for the configured backends) and the Upgrade call. Loaded module by module rather than from undici's index, which loads all of undici
 * (fetch, WebSocket, cache stores, mocks) and with it ~30 Node built-ins the proxy never calls
 * (zlib, dns, perf_hooks, worker_threads, web streams, sqlite): less start-up work, heap and RSS.
 */
import Agent from "undici/lib/dispatcher/agent.js"
import Client from "undici/lib/dispatcher/client.js"
import Pool from "undici/lib/dispatcher/pool.js"
import upgrade from "undici/lib/api/api-upgrade.js"

export { Agent, Client, Pool, upgrade }
