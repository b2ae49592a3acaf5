/**
 * bcrypt verification runs in a worker thread (threat: password-hash CPU exhaustion stalling every
 * request): the event loop's own thread does not pay for the hash. Measured as this thread's CPU time
 * (process.threadCpuUsage), not wall-clock time: a cost-12 bcryptjs hash is ~0.2-0.5 s of CPU wherever
 * it runs.
 */
import { describe, expect, it } from "@effect/vitest"
import bcrypt from "bcryptjs"
import { makeBcryptVerifier } from "../../src/services/bcryptWorker.ts"

describe("bcrypt verification off the event loop", () => {
  it("a right and a wrong password are judged in the worker; the main thread spends a small part of one hash's CPU", async () => {
    const stored = bcrypt.hashSync("wonderland", 12)
    // what one hash costs on this thread, for scale
    const before = process.threadCpuUsage()
    expect(bcrypt.compareSync("wonderland", stored)).toBe(true)
    const inline = process.threadCpuUsage(before)
    const verifier = makeBcryptVerifier()
    try {
      expect(await verifier.verify("warm-up", stored)).toBe(false) // (the worker's start-up is not the hash)
      const start = process.threadCpuUsage()
      const results = await Promise.all([verifier.verify("wonderland", stored), verifier.verify("wrong", stored)])
      const onThread = process.threadCpuUsage(start)
      expect(results).toEqual([true, false])
      // two hashes' work, of which this thread did less than a quarter of one
      expect(onThread.user + onThread.system).toBeLessThan((inline.user + inline.system) / 4)
    } finally {
      await verifier.close()
    }
  })
})
