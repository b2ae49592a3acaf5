import { assert, describe, it } from "@effect/vitest"
import bcrypt from "bcryptjs"
import { hashKind, hashPasswordScrypt, passwordHashProblem, standInHash, verifyPassword } from "../../src/domain/passwordHash.ts"

const SALT = "3ADkQ+HCQeX1RVun2CNpBQ=="
const KEY = "sj54DOEATAVNzryXBDWs9vcUxQ9JIC0s+O7FFauW1j0="

describe("stored password hashes: parameters node:crypto / bcryptjs can use", () => {
  it("accepts the hashes Gatehouse and htpasswd make", async () => {
    assert.isUndefined(passwordHashProblem(await hashPasswordScrypt("pw", 1024, 8, 1)))
    assert.isUndefined(passwordHashProblem(bcrypt.hashSync("pw", 4)))
  })

  it("refuses scrypt parameters node:crypto throws on (a 500 on every login) and hashes too short to mean anything", () => {
    assert.match(passwordHashProblem(`scrypt$16000$8$1$${SALT}$${KEY}`) ?? "", /power of two/)
    assert.match(passwordHashProblem(`scrypt$1$8$1$${SALT}$${KEY}`) ?? "", /power of two/)
    assert.match(passwordHashProblem(`scrypt$16384$0$1$${SALT}$${KEY}`) ?? "", /scrypt r/)
    assert.match(passwordHashProblem(`scrypt$16384$8$0$${SALT}$${KEY}`) ?? "", /scrypt p/)
    assert.match(passwordHashProblem(`scrypt$16384$8$9999999$${SALT}$${KEY}`) ?? "", /128\*r\*p/)
    assert.match(passwordHashProblem(`scrypt$131072$1$1$${SALT}$${KEY}`) ?? "", /below 2\^\(16\*r\)/)
    assert.match(passwordHashProblem(`scrypt$1048576$16$1$${SALT}$${KEY}`) ?? "", /1 GiB/)
    assert.match(passwordHashProblem(`scrypt$16384$8$1$${SALT}$A`) ?? "", /at least 16 bytes/)
    assert.match(passwordHashProblem("$2b$03$9mlJCo06kLNZiiuMgLKblez8yFfAPBTwRDA6PPrQmtoao7P5tNYe6") ?? "", /bcrypt cost/)
  })

  it("threat: an scrypt hash that decodes to 0 bytes (keylen 0) never matches a password", async () => {
    assert.isFalse(await verifyPassword("anything", `scrypt$16384$8$1$${SALT}$A`))
    const real = await hashPasswordScrypt("pw", 1024, 8, 1)
    assert.isTrue(await verifyPassword("pw", real))
    assert.isFalse(await verifyPassword("pW", real))
  })
})

describe("the stand-in hash for an unknown user name (threat: user enumeration by timing)", () => {
  it("is one of the configured hashes, the same for a name every time: with only scrypt users it is scrypt", async () => {
    const scryptOnly = [await hashPasswordScrypt("a", 1024, 8, 1), await hashPasswordScrypt("b", 2048, 8, 1)]
    for (const name of ["nosuchuser", "mallory", "", "a".repeat(300)]) {
      const h = standInHash(scryptOnly, name)
      assert.include(scryptOnly, h)
      assert.strictEqual(hashKind(h), "scrypt")
      assert.strictEqual(standInHash(scryptOnly, name), h)
    }
  })

  it("spreads unknown names over the configured kinds and costs, as the real names are", () => {
    const mixed = [bcrypt.hashSync("a", 4), `scrypt$16384$8$1$${SALT}$${KEY}`]
    const picked = new Set(Array.from({ length: 50 }, (_, i) => standInHash(mixed, `user-${i}`)))
    assert.strictEqual(picked.size, 2)
  })
})
