/**
 * `Effect.map` / `Effect.flatMap` for decision phases that usually decide synchronously: when the
 * input is already an Exit (Effect.succeed / Effect.fail are Exits in Effect 4), the result is an
 * Exit too, which the fiber's run loop takes inline instead of pushing a continuation. Anything
 * else falls back to the ordinary combinator, so the meaning is the same either way.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

const decided = <A, E, R>(self: Effect.Effect<A, E, R>): Exit.Exit<A, E> | undefined =>
  Exit.isExit(self) ? self as unknown as Exit.Exit<A, E> : undefined

export const mapNow = <A, B, E, R>(self: Effect.Effect<A, E, R>, f: (a: A) => B): Effect.Effect<B, E, R> => {
  const exit = decided(self)
  if (exit === undefined) return Effect.map(self, f)
  return Exit.isSuccess(exit) ? Exit.succeed(f(exit.value)) : exit as Exit.Exit<never, E>
}

/**
 * `Effect.flatMap` for a phase that usually decides at once, with the continuation's state passed to
 * it: `k` is a function built once (a step of the decision phases) and `s` the request it works on,
 * so a phase that decided at once costs no closure; only a phase that waits gets one.
 */
export const thenNow = <S, A, B, E, E2, R, R2>(
  self: Effect.Effect<A, E, R>,
  s: S,
  k: (s: S, a: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E | E2, R | R2> => {
  const exit = decided(self)
  if (exit === undefined) return Effect.flatMap(self, (a) => k(s, a))
  return Exit.isSuccess(exit) ? k(s, exit.value) : exit as Exit.Exit<never, E>
}
