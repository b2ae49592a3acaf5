/**
 * The response side of the filters, as one ResponseSink wrapper per response: response-head checks
 * run before the head is written; body inspectors see every chunk before it is written. The head
 * (and up to the inspectors' `holdBytes` of body) is held back until the first chunk has been
 * inspected, so an early detection is still a clean 403. Once something reached the client, a
 * detection aborts the exchange and the pipeline cuts the connection: a detected body is never
 * delivered whole.
 *
 * A refusal is recorded as the guard's verdict (the pipeline turns it into the request's failure)
 * and, in head/data, thrown so that undici aborts the upstream exchange at once.
 */
import type { Blocked } from "../../domain/errors.ts"
import type { HeaderMap } from "../../domain/hopHeaders.ts"
import type { ResponseSink } from "../Upstream.ts"
import type { ActiveFilter, BodyInspector, FilterRequest } from "./FilterPlugin.ts"

export interface ResponseGuard {
  readonly wrap: (sink: ResponseSink) => ResponseSink
  /** Set once a response filter refused the response. */
  readonly verdict: () => Blocked | undefined
}

type HeadCheck = NonNullable<ActiveFilter["responseHead"]>
type BodyCheck = NonNullable<ActiveFilter["responseBody"]>

export const makeResponseGuard = (
  req: FilterRequest,
  heads: ReadonlyArray<HeadCheck>,
  bodies: ReadonlyArray<BodyCheck>
): ResponseGuard => {
  let verdict: Blocked | undefined
  const refuse = (b: Blocked): never => {
    verdict = b
    throw b
  }
  const wrap = (inner: ResponseSink): ResponseSink => {
    let inspectors: Array<BodyInspector> = []
    let held: [number, string | undefined, HeaderMap] | undefined
    let hold = 0
    let buffered: Array<Buffer> = []
    let heldBytes = 0
    const flush = (): boolean => {
      const [status, text, headers] = held!
      held = undefined
      inner.head(status, text, headers)
      let ok = true
      for (const chunk of buffered) ok = inner.data(chunk)
      buffered = []
      return ok
    }
    return {
      head: (status, statusText, headers) => {
        for (const check of heads) {
          const b = check(req, status, headers)
          if (b !== undefined) refuse(b)
        }
        inspectors = []
        hold = 0
        for (const make of bodies) {
          const ins = make(req, status, headers)
          if (ins === undefined) continue
          inspectors.push(ins)
          if (ins.holdBytes > hold) hold = ins.holdBytes
        }
        if (inspectors.length === 0) inner.head(status, statusText, headers)
        else held = [status, statusText, headers]
      },
      data: (chunk) => {
        for (const ins of inspectors) {
          const b = ins.data(chunk)
          if (b !== undefined) refuse(b)
        }
        if (held === undefined) return inner.data(chunk)
        buffered.push(chunk)
        heldBytes += chunk.length
        return heldBytes > hold ? flush() : true
      },
      onDrain: (resume) => inner.onDrain(resume),
      end: (trailers) => {
        for (const ins of inspectors) {
          const b = ins.end()
          if (b !== undefined) {
            verdict = b
            return
          }
        }
        if (held !== undefined) flush()
        inner.end(trailers)
      },
      started: () => verdict !== undefined || inner.started()
    }
  }
  return { wrap, verdict: () => verdict }
}
