/** W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header), pure. */

export interface TraceParent {
  readonly traceId: string
  readonly spanId: string
  /** The trace-flags byte; bit 0 = sampled. */
  readonly flags: number
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE = "00000000000000000000000000000000"
const ZERO_SPAN = "0000000000000000"

/**
 * Parses a traceparent value; undefined when malformed, when version is ff, when trace-id or
 * parent-id is all zeros, or when version 00 carries extra fields (the spec says: ignore it).
 */
export const parseTraceparent = (value: string | Array<string> | undefined): TraceParent | undefined => {
  if (value === undefined || Array.isArray(value)) return undefined
  const m = TRACEPARENT.exec(value.trim())
  if (m === null) return undefined
  const [, version, traceId, spanId, flags, rest] = m
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined
  return { traceId: traceId!, spanId: spanId!, flags: parseInt(flags!, 16) }
}

export const formatTraceparent = (traceId: string, spanId: string, sampled: boolean): string =>
  `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`
