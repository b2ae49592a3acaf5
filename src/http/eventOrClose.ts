/** Waiting on a Node emitter from an Effect. */
import * as Effect from "effect/Effect"
import type { EventEmitter } from "node:events"

/**
 * Succeeds at the emitter's first `event` or 'close', whichever comes first (a response's 'finish' or
 * 'drain', cut short when its connection closes); interruption removes both listeners.
 */
export const eventOrClose = (emitter: EventEmitter, event: string): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const done = () => {
      emitter.off(event, done)
      emitter.off("close", done)
      resume(Effect.void)
    }
    emitter.once(event, done)
    emitter.once("close", done)
    return Effect.sync(() => {
      emitter.off(event, done)
      emitter.off("close", done)
    })
  })
