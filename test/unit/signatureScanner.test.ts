import { assert, describe, it } from "@effect/vitest"
import { EICAR, makeSignatureScanner } from "../../src/domain/signatureScanner.ts"

const sigs = [{ name: "EICAR", bytes: Buffer.from(EICAR, "latin1") }]
const scanAll = (chunks: ReadonlyArray<Buffer>) => {
  const s = makeSignatureScanner(sigs)
  for (const c of chunks) {
    const hit = s.push(c)
    if (hit !== undefined) return hit
  }
  return undefined
}
const body = Buffer.concat([Buffer.alloc(1000, "a"), Buffer.from(EICAR, "latin1"), Buffer.alloc(1000, "b")])

describe("signature scanner (sliding window over chunk boundaries)", () => {
  it("the EICAR string is the 68-byte test file", () => {
    assert.strictEqual(EICAR.length, 68)
    assert.isTrue(EICAR.startsWith("X5O!P%@AP[4\\PZX54(P^)7CC)7}$"))
  })
  it("finds the signature in one chunk", () => assert.strictEqual(scanAll([body]), "EICAR"))
  it("finds it split at every possible boundary", () => {
    for (let cut = 1001; cut < 1068; cut++) assert.strictEqual(scanAll([body.subarray(0, cut), body.subarray(cut)]), "EICAR", `cut ${cut}`)
  })
  it("finds it spread over many tiny chunks (1 and 7 bytes)", () => {
    for (const size of [1, 7]) {
      const chunks: Array<Buffer> = []
      for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size))
      assert.strictEqual(scanAll(chunks), "EICAR", `size ${size}`)
    }
  })
  it("does not report a partial signature or one broken by a byte", () => {
    assert.strictEqual(scanAll([Buffer.from(EICAR.slice(0, 67), "latin1")]), undefined)
    const broken = Buffer.from(EICAR, "latin1")
    broken[30] = 0x20
    assert.strictEqual(scanAll([broken.subarray(0, 30), broken.subarray(30)]), undefined)
  })
  it("finds it when a long chunk is followed by tiny ones (the seam window spans several chunks)", () => {
    for (const cut of [1001, 1030, 1067]) {
      const chunks: Array<Buffer> = [body.subarray(0, cut)]
      for (let i = cut; i < body.length; i += 3) chunks.push(body.subarray(i, i + 3))
      assert.strictEqual(scanAll(chunks), "EICAR", `cut ${cut}`)
    }
    assert.strictEqual(scanAll([body.subarray(0, 1030), ...Array.from(body.subarray(1030, 1040), (b) => Buffer.from([b]))]), undefined)
  })
})
