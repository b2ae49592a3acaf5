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
  readonly push: (chunk: Buffer) => string | undefined
}

/**
 * Compiles a signature set once; each call of the result is a fresh scanner for one body. The seam
 * window keeps a view of the previous chunk's last bytes (no copy: the body's chunks are not reused).
 */
export const signatureScanners = (signatures: ReadonlyArray<Signature>): () => SignatureScanner => {
  const keep = Math.max(0, ...signatures.map((s) => s.bytes.length)) - 1
  const search = (buf: Buffer): string | undefined => {
    for (const s of signatures) if (buf.indexOf(s.bytes) >= 0) return s.name
    return undefined
  }
  if (keep <= 0) return () => ({ push: search })
  return () => {
    let tail: Buffer | undefined
    return {
      push: (chunk) => {
        if (tail !== undefined) {
          const hit = search(Buffer.concat([tail, chunk.subarray(0, keep)]))
          if (hit !== undefined) return hit
        }
        const hit = search(chunk)
        if (hit !== undefined) return hit
        // the new tail: last `keep` bytes of (tail + chunk)
        tail = chunk.length >= keep
          ? chunk.subarray(chunk.length - keep)
          : Buffer.concat(tail === undefined ? [chunk] : [tail, chunk]).subarray(-keep)
        return undefined
      }
    }
  }
}

export const makeSignatureScanner = (signatures: ReadonlyArray<Signature>): SignatureScanner => signatureScanners(signatures)()
