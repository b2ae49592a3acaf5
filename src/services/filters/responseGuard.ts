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
import { DelegatingSink, type ResponseSink } from "../Upstream.ts"
import type { ActiveFilter, BodyInspector, FilterRequest } from "./FilterPlugin.ts"
import { type StoredLike, storedVerdict } from "./storedVerdict.ts"

export interface ResponseGuard {
  readonly wrap: (sink: ResponseSink) => ResponseSink
  /** Set once a response filter refused the response. */
  verdict(): Blocked | undefined
  /**
   * The verdict on a stored response about to be served from the cache (storedVerdict.ts): the
   * cache serves it only when this is undefined. One the same rules passed is not judged again.
   */
  stored(entry: StoredLike): Blocked | undefined
}

type HeadCheck = NonNullable<ActiveFilter["responseHead"]>
type BodyCheck = NonNullable<ActiveFilter["responseBody"]>

/** One response's guard: the checks and the verdict, shared by its sink wrapper. */
class Guard implements ResponseGuard {
  result: Blocked | undefined = undefined
  readonly req: FilterRequest
  readonly heads: ReadonlyArray<HeadCheck>
  readonly bodies: ReadonlyArray<BodyCheck>
  readonly passedStored: WeakSet<object>
  constructor(req: FilterRequest, heads: ReadonlyArray<HeadCheck>, bodies: ReadonlyArray<BodyCheck>, passedStored: WeakSet<object>) {
    this.req = req
    this.heads = heads
    this.bodies = bodies
    this.passedStored = passedStored
  }
  /** (A function value: the pipeline composes it with the other response filters.) */
  readonly wrap = (inner: ResponseSink): ResponseSink => new GuardSink(this, inner)
  verdict(): Blocked | undefined {
    return this.result
  }
  refuse(b: Blocked): never {
    this.result = b
    throw b
  }
  stored(entry: StoredLike): Blocked | undefined {
    if (this.passedStored.has(entry)) return undefined
    const b = storedVerdict(this.req, this.heads, this.bodies, entry)
    if (b === undefined) this.passedStored.add(entry)
    return b
  }
}

const NONE: ReadonlyArray<BodyInspector> = []

/** The guarded sink: checks the head, runs the body inspectors, holds back what is not yet judged. */
class GuardSink extends DelegatingSink {
  inspectors: ReadonlyArray<BodyInspector> = NONE
  /** The held-back head (status 0: none held). */
  heldStatus = 0
  heldText: string | undefined = undefined
  heldHeaders: HeaderMap | undefined = undefined
  hold = 0
  buffered: Array<Buffer> | undefined = undefined
  heldBytes = 0
  readonly guard: Guard
  constructor(guard: Guard, inner: ResponseSink) {
    super(inner)
    this.guard = guard
  }

  override head(status: number, statusText: string | undefined, headers: HeaderMap): void {
    const { guard } = this
    // A head starts a response: nothing held from an earlier one (an attempt cut before its head
    // was written) may be written in front of this one, neither its head nor its body bytes.
    this.buffered = undefined
    this.heldBytes = 0
    this.heldStatus = 0
    this.heldHeaders = undefined
    for (const check of guard.heads) {
      const b = check(guard.req, status, headers)
      if (b !== undefined) guard.refuse(b)
    }
    let inspectors: Array<BodyInspector> | undefined
    let hold = 0
    for (const make of guard.bodies) {
      const ins = make(guard.req, status, headers)
      if (ins === undefined) continue
      ;(inspectors ??= []).push(ins)
      if (ins.holdBytes > hold) hold = ins.holdBytes
    }
    this.inspectors = inspectors ?? NONE
    this.hold = hold
    if (inspectors === undefined) this.inner.head(status, statusText, headers)
    else {
      this.heldStatus = status
      this.heldText = statusText
      this.heldHeaders = headers
    }
  }

  override data(chunk: Buffer): boolean {
    for (const ins of this.inspectors) {
      const b = ins.data(chunk)
      if (b !== undefined) this.guard.refuse(b)
    }
    if (this.heldStatus === 0) return this.inner.data(chunk)
    ;(this.buffered ??= []).push(chunk)
    this.heldBytes += chunk.length
    return this.heldBytes > this.hold ? this.flush() : true
  }

  override end(trailers: HeaderMap): void {
    for (const ins of this.inspectors) {
      const b = ins.end()
      if (b !== undefined) {
        this.guard.result = b
        return
      }
    }
    if (this.heldStatus !== 0) this.flush()
    this.inner.end(trailers)
  }

  override started(): boolean {
    return this.guard.result !== undefined || this.inner.started()
  }

  /** Writes the held head and body. */
  flush(): boolean {
    const { inner } = this
    const status = this.heldStatus
    this.heldStatus = 0
    inner.head(status, this.heldText, this.heldHeaders!)
    this.heldHeaders = undefined
    let ok = true
    const buffered = this.buffered
    this.buffered = undefined
    if (buffered !== undefined) for (let i = 0; i < buffered.length; i++) ok = inner.data(buffered[i]!)
    return ok
  }
}

export const makeResponseGuard = (
  req: FilterRequest,
  heads: ReadonlyArray<HeadCheck>,
  bodies: ReadonlyArray<BodyCheck>,
  passedStored: WeakSet<object>
): ResponseGuard => new Guard(req, heads, bodies, passedStored)
