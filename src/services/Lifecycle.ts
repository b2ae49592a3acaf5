import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** Start-up, readiness and draining state, read by the health endpoints and the listener. */
export interface LifecycleState {
  readonly started: boolean
  readonly listening: boolean
  readonly draining: boolean
  /** Degraded dependencies reported by services (e.g. "rate_limit_backend": "redis unreachable"); informative. */
  readonly details: Readonly<Record<string, string>>
}

export class Lifecycle extends Context.Service<Lifecycle, {
  readonly state: () => LifecycleState
  readonly markListening: Effect.Effect<void>
  readonly markStarted: Effect.Effect<void>
  readonly beginDrain: Effect.Effect<void>
  /** Set (a message) or clear (undefined) a readiness detail; called by services watching a dependency. */
  readonly reportDetail: (name: string, problem: string | undefined) => void
}>()("gatehouse/Lifecycle") {
  static readonly layer = Layer.sync(Lifecycle, () => {
    let started = false
    let listening = false
    let draining = false
    let details: Record<string, string> = {}
    return Lifecycle.of({
      state: () => ({ started, listening, draining, details }),
      reportDetail: (name, problem) => {
        if (details[name] === problem) return
        const next = { ...details }
        if (problem === undefined) delete next[name]
        else next[name] = problem
        details = next
      },
      markListening: Effect.sync(() => { listening = true }),
      markStarted: Effect.sync(() => { started = true }),
      beginDrain: Effect.sync(() => { draining = true })
    })
  })
}
