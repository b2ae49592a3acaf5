/**
 * Response filters as ResponseSink wrappers, composed into the upstream phase's `wrapSink`.
 * Listed in the order the bytes meet them coming from the upstream: the first wrapper sees the
 * upstream's head and chunks first (content inspection sees what the origin sent), the last one
 * writes to the client's sink. `undefined` entries (inactive filters) are skipped.
 */
import type { ResponseSink } from "../services/Upstream.ts"

export type SinkWrapper = (sink: ResponseSink) => ResponseSink

export const composeSinks = (wrappers: ReadonlyArray<SinkWrapper | undefined>): SinkWrapper => (sink) => {
  let out = sink
  for (let i = wrappers.length - 1; i >= 0; i--) {
    const w = wrappers[i]
    if (w !== undefined) out = w(out)
  }
  return out
}
