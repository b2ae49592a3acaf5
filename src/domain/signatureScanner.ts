/**
 * Byte-signature search over a streamed body without buffering it: each chunk is searched on its
 * own, and the seam between chunks through a small window (the last `longest - 1` bytes of what
 * came before plus the first `longest - 1` bytes of the new chunk), so a signature split across any
 * number of chunk boundaries is still found. Pure (one mutable scanner per body).
 */

/** The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/). */
export const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

export interface Signature {
  readonly name: string
  readonly bytes: Buffer
}

export interface SignatureScanner {
  /** Feed the next chunk; returns the name of the first signature found so far, else undefined. */
  push(chunk: Buffer): string | undefined
}

const search = (signatures: ReadonlyArray<Signature>, buf: Buffer): string | undefined => {
  for (const s of signatures) if (buf.indexOf(s.bytes) >= 0) return s.name
  return undefined
}

/**
 * One body's scanner. The seam window needs the last `keep` bytes of what came before: it keeps a
 * reference to the previous chunk (no copy, no view: the body's chunks are not reused) and only
 * builds the window when a next chunk comes, so a body of one chunk costs one search.
 */
class SeamScanner implements SignatureScanner {
  /** The previous chunk, or the last `keep` bytes before it when it was shorter than `keep`. */
  prev: Buffer | undefined = undefined
  readonly signatures: ReadonlyArray<Signature>
  readonly keep: number
  constructor(signatures: ReadonlyArray<Signature>, keep: number) {
    this.signatures = signatures
    this.keep = keep
  }
  push(chunk: Buffer): string | undefined {
    const { keep, prev } = this
    const tail = prev === undefined || prev.length <= keep ? prev : prev.subarray(prev.length - keep)
    if (tail !== undefined) {
      const hit = search(this.signatures, Buffer.concat([tail, chunk.subarray(0, keep)]))
      if (hit !== undefined) return hit
    }
    const hit = search(this.signatures, chunk)
    if (hit !== undefined) return hit
    this.prev = chunk.length >= keep || tail === undefined ? chunk : Buffer.concat([tail, chunk]).subarray(-keep)
    return undefined
  }
}

/** Compiles a signature set once; each call of the result is a fresh scanner for one body. */
export const signatureScanners = (signatures: ReadonlyArray<Signature>): () => SignatureScanner => {
  const keep = Math.max(0, ...signatures.map((s) => s.bytes.length)) - 1
  if (keep <= 0) {
    const whole: SignatureScanner = { push: (chunk) => search(signatures, chunk) }
    return () => whole
  }
  return () => new SeamScanner(signatures, keep)
}

export const makeSignatureScanner = (signatures: ReadonlyArray<Signature>): SignatureScanner => signatureScanners(signatures)()
