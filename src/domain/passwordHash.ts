/**
 * Password verification for proxy users: bcrypt ("$2b$..."; bcryptjs) or scrypt in the format
 * "scrypt$N$r$p$<salt base64>$<hash base64>" (node:crypto, keylen = hash length). Constant-time compare.
 * `passwordHashProblem` is what config decoding checks, so a hash that passes `--check-config` can be
 * verified at run time (no RangeError, no silent "always wrong", no "any password" from an empty hash).
 */
import bcrypt from "bcryptjs"
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto"

interface ScryptHash {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly salt: Buffer
  readonly hash: Buffer
}

/** Shortest scrypt hash accepted: a shorter one is guessable, and an empty one (keylen 0) matches any password. */
const MIN_SCRYPT_HASH_BYTES = 16
/** 128·N·r bytes per verification; above this a configured hash is a mistake (and OpenSSL may refuse it). */
const MAX_SCRYPT_MEMORY = 1024 * 1024 * 1024

/** maxmem for node:crypto: the 128·r·(N + p + 2) bytes OpenSSL needs, plus slack. */
const maxmemOf = (N: number, r: number, p: number): number => 128 * r * (N + p + 2) + 1024 * 1024

const parseScrypt = (stored: string): ScryptHash | string => {
  const [, n, r, p, salt, hash] = stored.split("$")
  const N = Number(n)
  const R = Number(r)
  const P = Number(p)
  // The limits OpenSSL's EVP_PBE_scrypt applies (node:crypto throws "Invalid scrypt params" past them),
  // then a memory cap and a minimum hash length of our own.
  if (!Number.isSafeInteger(N) || N < 2 || N > 2 ** 32 - 1 || N % 2 ** Math.floor(Math.log2(N)) !== 0) {
    return `a power of two >= 2 as scrypt N (got ${n})`
  }
  if (!Number.isSafeInteger(R) || R < 1 || R > 2 ** 32 - 1) return `an integer >= 1 as scrypt r (got ${r})`
  if (!Number.isSafeInteger(P) || P < 1 || P > 2 ** 32 - 1) return `an integer >= 1 as scrypt p (got ${p})`
  if (128 * R * P > 2 ** 31 - 1) return `scrypt 128*r*p within 2^31 - 1 bytes (got r=${R}, p=${P})`
  if (16 * R < 64 && N >= 2 ** (16 * R)) return `scrypt N below 2^(16*r) = ${2 ** (16 * R)} (got ${N})`
  if (128 * N * R > MAX_SCRYPT_MEMORY) return `scrypt memory per verification (128*N*r) of at most 1 GiB (got ${128 * N * R} bytes)`
  const key = Buffer.from(hash ?? "", "base64")
  if (key.length < MIN_SCRYPT_HASH_BYTES) return `an scrypt hash of at least ${MIN_SCRYPT_HASH_BYTES} bytes (got ${key.length})`
  return { N, r: R, p: P, salt: Buffer.from(salt ?? "", "base64"), hash: key }
}

/**
 * Why a stored hash (already of the right shape) cannot be verified, or undefined when it can:
 * bcrypt cost outside 4-31, scrypt parameters node:crypto refuses, or an scrypt hash too short.
 */
export const passwordHashProblem = (stored: string): string | undefined => {
  if (stored.startsWith("scrypt$")) {
    const parsed = parseScrypt(stored)
    return typeof parsed === "string" ? parsed : undefined
  }
  const cost = Number(stored.slice(4, 6))
  return cost >= 4 && cost <= 31 ? undefined : `a bcrypt cost from 04 to 31 (got ${stored.slice(4, 6)})`
}

/** Which pool of work a hash needs: bcryptjs runs on the event loop, scrypt in libuv's thread pool. */
export const hashKind = (stored: string): "bcrypt" | "scrypt" => (stored.startsWith("scrypt$") ? "scrypt" : "bcrypt")

export const verifyPassword = (password: string, stored: string): Promise<boolean> => {
  if (stored.startsWith("scrypt$")) {
    const parsed = parseScrypt(stored)
    if (typeof parsed === "string") return Promise.resolve(false)
    const { N, r, p, salt, hash } = parsed
    return new Promise((resolve) =>
      scrypt(password, salt, hash.length, { N, r, p, maxmem: maxmemOf(N, r, p) }, (err, key) =>
        resolve(err === null && key.length === hash.length && timingSafeEqual(key, hash))
      )
    )
  }
  return bcrypt.compare(password, stored).catch(() => false)
}

/**
 * The hash an unknown user name is checked against, so that an unknown name costs and takes what a
 * known one does: one of the configured hashes (the result is thrown away), picked by the name
 * (FNV-1a), so one name always gets the same kind and cost. With only scrypt users it is scrypt
 * (no bcrypt on the event loop); with mixed users unknown names are spread over the same kinds
 * and costs as the real ones, so timing tells an attacker nothing a real user's timing does not.
 */
export const standInHash = (hashes: ReadonlyArray<string>, user: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < user.length; i++) h = Math.imul(h ^ user.charCodeAt(i), 0x01000193)
  return hashes[(h >>> 0) % hashes.length]!
}

/** Make an scrypt hash in the format above (N=16384, r=8, p=1): for docs, tests and operators. */
export const hashPasswordScrypt = (password: string, N = 16384, r = 8, p = 1): Promise<string> =>
  new Promise((resolve, reject) => {
    const salt = randomBytes(16)
    scrypt(password, salt, 32, { N, r, p, maxmem: maxmemOf(N, r, p) }, (err, key) =>
      err === null ? resolve(`scrypt$${N}$${r}$${p}$${salt.toString("base64")}$${key.toString("base64")}`) : reject(err)
    )
  })
