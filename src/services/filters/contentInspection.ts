/**
 * Content inspection (security.inspection, "malware"): refuses responses by content type at the
 * head, and scans bodies as they stream, never buffering them whole: the EICAR test signature
 * anywhere in the body (across chunk boundaries too, via a sliding window) and SHA-256 digests of
 * whole bodies up to `max_digest_bytes` (those bodies are held until their digest is known).
 * Compressed bodies (Content-Encoding) are scanned as sent; see README.
 */
import { createHash, type Hash } from "node:crypto"
import { Blocked } from "../../domain/errors.ts"
import type { HeaderMap } from "../../domain/hopHeaders.ts"
import { EICAR, type Signature, type SignatureScanner, signatureScanners } from "../../domain/signatureScanner.ts"
import type { BodyInspector, FilterPlugin, FilterRequest } from "./FilterPlugin.ts"

const SIGNATURES: ReadonlyArray<Signature> = [{ name: "EICAR-Test-File", bytes: Buffer.from(EICAR, "latin1") }]
const newEicarScanner = signatureScanners(SIGNATURES)

const single = (v: string | Array<string> | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)

const contentLengthOf = (headers: HeaderMap): number | undefined => {
  const v = single(headers["content-length"])
  if (v === undefined) return undefined
  const n = Number(v)
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/** The media type of the Content-Type element `v[from, to)`: "Text/HTML; charset=x " → "text/html". */
const mediaTypeIn = (v: string, from: number, to: number): string => {
  const semi = v.indexOf(";", from)
  return v.slice(from, semi >= 0 && semi < to ? semi : to).trim().toLowerCase()
}

const blocked = (req: FilterRequest, rule: string, reason: string) =>
  new Blocked({ filter: "inspection", subject: req.host ?? req.rawHost, rule, reason })

/** One response body's inspection: the EICAR scanner and the digest, as the chunks pass. */
class Inspection implements BodyInspector {
  seen = 0
  hash: Hash | undefined
  readonly req: FilterRequest
  readonly scanner: SignatureScanner | undefined
  readonly maxDigest: number
  readonly digests: ReadonlySet<string>
  readonly holdBytes: number
  constructor(req: FilterRequest, scanner: SignatureScanner | undefined, hash: Hash | undefined, maxDigest: number, digests: ReadonlySet<string>, holdBytes: number) {
    this.req = req
    this.scanner = scanner
    this.hash = hash
    this.maxDigest = maxDigest
    this.digests = digests
    this.holdBytes = holdBytes
  }
  data(chunk: Buffer): Blocked | undefined {
    this.seen += chunk.length
    if (this.hash !== undefined) {
      if (this.seen > this.maxDigest) this.hash = undefined
      else this.hash.update(chunk)
    }
    const hit = this.scanner?.push(chunk)
    return hit === undefined
      ? undefined
      : blocked(this.req, `security.inspection.eicar: ${hit}`, `response body contains the ${hit} signature`)
  }
  end(): Blocked | undefined {
    if (this.hash === undefined) return undefined
    const hex = this.hash.digest("hex")
    return this.digests.has(hex)
      ? blocked(this.req, `security.inspection.sha256: ${hex}`, `response body matches a blocked SHA-256 digest`)
      : undefined
  }
}

export const contentInspection: FilterPlugin = {
  name: "inspection",
  compile: ({ inspection }) => {
    if (!inspection.enabled) return undefined
    const types = new Set<string>()
    const topLevel = new Set<string>()
    for (const t of inspection.blocked_content_types) {
      const lower = t.toLowerCase()
      if (lower.endsWith("/*")) topLevel.add(lower.slice(0, -2))
      else types.add(lower)
    }
    const digests = new Set(inspection.sha256.map((d) => d.toLowerCase()))
    const scanEicar = inspection.eicar
    if (types.size === 0 && topLevel.size === 0 && digests.size === 0 && !scanEicar) return undefined
    const maxDigest = inspection.max_digest_bytes
    const holdBytes = inspection.hold_bytes

    /** The rule blocking one media type, if any. */
    const ruleFor = (media: string): string | undefined => {
      if (types.has(media)) return media
      const slash = media.indexOf("/")
      return slash > 0 && topLevel.has(media.slice(0, slash)) ? `${media.slice(0, slash)}/*` : undefined
    }
    /** Every comma-separated element of one Content-Type field value. */
    const judgeField = (req: FilterRequest, v: string): Blocked | undefined => {
      for (let from = 0;;) {
        const comma = v.indexOf(",", from)
        const media = mediaTypeIn(v, from, comma < 0 ? v.length : comma)
        const rule = ruleFor(media)
        if (rule !== undefined) return blocked(req, `security.inspection.blocked_content_types: ${rule}`, `content type ${media} is blocked`)
        if (comma < 0) return undefined
        from = comma + 1
      }
    }
    /**
     * Every Content-Type field and every element of each is judged, and any blocked one refuses the
     * response. Content-Type is not a list (RFC 9110 §8.3), but browsers combine repeated fields and
     * use the last valid type (Fetch "extract a MIME type"): judging only the first would let
     * `text/plain` + `video/mp4`, or `text/html,video/mp4`, deliver a blocked type.
     */
    const responseHead = types.size === 0 && topLevel.size === 0
      ? undefined
      : (req: FilterRequest, _status: number, headers: HeaderMap) => {
        const v = headers["content-type"]
        if (v === undefined) return undefined
        if (!Array.isArray(v)) return judgeField(req, v)
        for (const field of v) {
          const b = judgeField(req, field)
          if (b !== undefined) return b
        }
        return undefined
      }

    const responseBody = (req: FilterRequest, _status: number, headers: HeaderMap): BodyInspector | undefined => {
      const length = contentLengthOf(headers)
      const digest = digests.size > 0 && (length === undefined || length <= maxDigest)
      if (!digest && !scanEicar) return undefined
      return new Inspection(req, scanEicar ? newEicarScanner() : undefined, digest ? createHash("sha256") : undefined, maxDigest, digests,
        // digest bodies are held whole (they are within max_digest_bytes); small known-length bodies too
        digest ? (length ?? maxDigest) : length !== undefined && length <= holdBytes ? length : 0)
    }
    return responseHead === undefined ? { name: "inspection", responseBody } : { name: "inspection", responseHead, responseBody }
  }
}
