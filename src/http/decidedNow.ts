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

export const flatMapNow = <A, B, E, E2, R, R2>(
  self: Effect.Effect<A, E, R>,
  f: (a: A) => Effect.Effect<B, E2, R2>
): Effect.Effect<B, E | E2, R | R2> => {
  const exit = decided(self)
  if (exit === undefined) return Effect.flatMap(self, f)
  return Exit.isSuccess(exit) ? f(exit.value) : exit as Exit.Exit<never, E>
}
