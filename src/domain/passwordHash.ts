/**
 * Password verification for proxy users: bcrypt ("$2b$..."; bcryptjs) or scrypt in the format
 * "scrypt$N$r$p$<salt base64>$<hash base64>" (node:crypto, keylen = hash length). Constant-time compare.
 */
import bcrypt from "bcryptjs"
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto"

export const verifyPassword = (password: string, stored: string): Promise<boolean> => {
  if (stored.startsWith("scrypt$")) {
    const [, n, r, p, salt, hash] = stored.split("$")
    const expected = Buffer.from(hash ?? "", "base64")
    const N = Number(n)
    const R = Number(r)
    const P = Number(p)
    return new Promise((resolve) =>
      scrypt(password, Buffer.from(salt ?? "", "base64"), expected.length, { N, r: R, p: P, maxmem: 256 * N * R + 1024 * 1024 }, (err, key) =>
        resolve(err === null && key.length === expected.length && timingSafeEqual(key, expected))
      )
    )
  }
  return bcrypt.compare(password, stored).catch(() => false)
}

/** Make an scrypt hash in the format above (N=16384, r=8, p=1): for docs, tests and operators. */
export const hashPasswordScrypt = (password: string, N = 16384, r = 8, p = 1): Promise<string> =>
  new Promise((resolve, reject) => {
    const salt = randomBytes(16)
    scrypt(password, salt, 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) =>
      err === null ? resolve(`scrypt$${N}$${r}$${p}$${salt.toString("base64")}$${key.toString("base64")}`) : reject(err)
    )
  })
