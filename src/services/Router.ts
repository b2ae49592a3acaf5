import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { NoRoute } from "../domain/errors.ts"
import { type Backend, compileRoutes, matchRoute } from "../domain/routeTable.ts"
import { Config } from "./Config.ts"

/** Reverse-proxy routing: the route table is compiled once in the layer; lookups are pure. */
export class Router extends Context.Service<Router, {
  route(host: string, path: string): Effect.Effect<Backend, NoRoute>
}>()("gatehouse/Router") {
  static readonly layer = Layer.effect(
    Router,
    Effect.gen(function*() {
      const config = yield* Config
      const table = compileRoutes(config.routing.rules, config.routing.default_backend)
      return Router.of({
        route: (host, path) => {
          const backend = matchRoute(table, host, path)
          return backend === undefined ? Effect.fail(new NoRoute({ host, path })) : Effect.succeed(backend)
        }
      })
    })
  )
}
