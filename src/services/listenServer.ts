/** Binds a node server; a port that cannot be had is a ConfigError naming the config key. */
import * as Effect from "effect/Effect"
import type { Server } from "node:net"
import { ConfigError } from "../domain/errors.ts"

export const listenServer = (server: Server, key: string, port: number, host: string, backlog?: number) =>
  Effect.callback<number, ConfigError>((resume) => {
    const onError = (e: NodeJS.ErrnoException) =>
      resume(Effect.fail(new ConfigError({
        key,
        value: String(port),
        expected: `a free port on ${host} (${e.code ?? e.message})`,
        source: "listen"
      })))
    server.once("error", onError)
    server.listen(backlog === undefined ? { port, host } : { port, host, backlog }, () => {
      server.removeListener("error", onError)
      const addr = server.address()
      resume(Effect.succeed(typeof addr === "object" && addr !== null ? addr.port : port))
    })
  })
