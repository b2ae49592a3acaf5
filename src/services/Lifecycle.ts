import { Context, Effect, Layer } from "effect"

/** Start-up, readiness and draining state, read by the health endpoints and the listener. */
export interface LifecycleState {
  readonly started: boolean
  readonly listening: boolean
  readonly draining: boolean
}

export class Lifecycle extends Context.Service<Lifecycle, {
  readonly state: () => LifecycleState
  readonly markListening: Effect.Effect<void>
  readonly markStarted: Effect.Effect<void>
  readonly beginDrain: Effect.Effect<void>
}>()("gatehouse/Lifecycle") {
  static readonly layer = Layer.sync(Lifecycle, () => {
    let started = false
    let listening = false
    let draining = false
    return Lifecycle.of({
      state: () => ({ started, listening, draining }),
      markListening: Effect.sync(() => { listening = true }),
      markStarted: Effect.sync(() => { started = true }),
      beginDrain: Effect.sync(() => { draining = true })
    })
  })
}
