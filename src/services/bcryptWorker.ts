/**
 * bcrypt verification off the event loop. bcryptjs is JavaScript: even run one hash at a time and
 * yielding between its ~100 ms steps, a steady stream of wrong passwords held every other request up
 * to 100 ms per turn (30-300 × slower under a flood, measured). One worker thread runs the hashes
 * instead, made on the first bcrypt verification (a worker costs memory: none when no user has a
 * bcrypt hash, or no bcrypt login happened). ProxyAuth's bcrypt pool lets one hash run at a time,
 * which is what one worker does.
 *
 * The worker loads bcryptjs from where this process resolves it. Where that fails (no node_modules
 * beside the bundle) or the worker dies, hashes run on the event loop as before, yielding between
 * steps (what was waiting on the worker included).
 */
import bcrypt from "bcryptjs"
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads")
const bcrypt = require(workerData.bcryptjs)
parentPort.on("message", ({ id, password, stored }) => {
  let ok = false
  try { ok = bcrypt.compareSync(password, stored) } catch {}
  parentPort.postMessage({ id, ok })
})
`

interface Job {
  readonly password: string
  readonly stored: string
  readonly resolve: (ok: boolean) => void
}

const onEventLoop = (password: string, stored: string): Promise<boolean> => bcrypt.compare(password, stored).catch(() => false)

export interface BcryptVerifier {
  readonly verify: (password: string, stored: string) => Promise<boolean>
  readonly close: () => Promise<void>
}

export const makeBcryptVerifier = (): BcryptVerifier => {
  /** undefined: not started yet; null: unavailable (hashes run on the event loop). */
  let thread: Worker | undefined | null
  const jobs = new Map<number, Job>()
  let nextId = 0

  const start = (): Worker | null => {
    try {
      const bcryptjs = createRequire(import.meta.url).resolve("bcryptjs")
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptjs } })
      w.unref()
      w.on("message", ({ id, ok }: { id: number; ok: boolean }) => {
        const job = jobs.get(id)
        jobs.delete(id)
        job?.resolve(ok)
      })
      const gone = () => {
        if (thread !== w) return
        thread = null
        for (const [id, job] of jobs) {
          jobs.delete(id)
          onEventLoop(job.password, job.stored).then(job.resolve)
        }
      }
      w.on("error", gone)
      w.on("exit", gone)
      return w
    } catch {
      return null
    }
  }

  return {
    verify: (password, stored) => {
      if (thread === undefined) thread = start()
      const w = thread
      if (w === null) return onEventLoop(password, stored)
      return new Promise<boolean>((resolve) => {
        const id = ++nextId
        jobs.set(id, { password, stored, resolve })
        w.postMessage({ id, password, stored })
      })
    },
    close: async () => {
      const w = thread
      thread = null
      if (w !== null && w !== undefined) await w.terminate()
    }
  }
}
