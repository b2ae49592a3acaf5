/**
 * Two sockets joined as two Effect Streams (NodeStream.fromReadable → NodeSink.fromWritable), one per
 * direction, with backpressure. Each direction ends its writable when its readable ends, so a
 * half-close reaches the other side while the reverse direction keeps flowing. Completes when both
 * directions are done; fails on the first socket error.
 */
import { NodeSink, NodeStream } from "@effect/platform-node"
import { Effect, Stream } from "effect"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import { UpstreamError } from "../domain/errors.ts"

const pipeOneWay = (from: Duplex, to: Duplex, label: string) =>
  Stream.run(
    NodeStream.fromReadable<Uint8Array, UpstreamError>({
      evaluate: () => from,
      closeOnDone: false,
      onError: (cause) => new UpstreamError({ reason: "reset", upstream: label, responseStarted: true, cause })
    }),
    NodeSink.fromWritable<UpstreamError, Uint8Array>({
      evaluate: () => to,
      endOnDone: true,
      onError: (cause) => new UpstreamError({ reason: "reset", upstream: label, responseStarted: true, cause })
    })
  )

/**
 * Join both ways. After `idleMs` without traffic on either socket both are destroyed and `onIdle`
 * runs (so the caller can log `idle_timeout`).
 */
export const bridgeSockets = (
  client: Duplex,
  upstream: Duplex,
  label: string,
  idleMs: number,
  onIdle: () => void = () => {}
): Effect.Effect<void, UpstreamError> =>
  Effect.suspend(() => {
    const idle = () => {
      onIdle()
      upstream.destroy()
      client.destroy()
    }
    ;(upstream as Partial<Socket>).setTimeout?.(idleMs, idle)
    ;(client as Partial<Socket>).setTimeout?.(idleMs, idle)
    return Effect.all([pipeOneWay(client, upstream, label), pipeOneWay(upstream, client, label)], { concurrency: 2, discard: true })
  })
