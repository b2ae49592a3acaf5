/**
 * Proxy authentication (RFC 9110 §11.7.1, Basic per RFC 7617) for forward-proxy and CONNECT requests
 * when `security.proxy_auth.users` is not empty. Passwords are stored as bcrypt or scrypt hashes
 * (domain/passwordHash.ts). A verified Proxy-Authorization value is remembered by its SHA-256 so the
 * slow hash runs once per credential, not per request; a wrong one is remembered too, so repeating it
 * costs nothing. The header is hop-by-hop: it is never forwarded (hopHeaders.ts).
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createHash } from "node:crypto"
import type { ProxyAuthSettings } from "../domain/config/identity.ts"
import { ProxyAuthRequired } from "../domain/errors.ts"
import { verifyPassword } from "../domain/passwordHash.ts"
import { Config } from "./Config.ts"

const CACHE_MAX = 10_000
/** Compared against when the user is unknown, so unknown and known users take the same time. */
const DUMMY_HASH = "$2b$10$CwTycUXWue0Thq9StjUM0uJ8.5tZ0n0Yc6bPqC6zWvH1VfU5wJQ3a"

/** "Basic dXNlcjpwdw==" → { user, password }, or undefined when not Basic or malformed. */
export const parseBasic = (header: string): { user: string; password: string } | undefined => {
  const m = /^basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(header)
  if (m === null) return undefined
  const text = Buffer.from(m[1]!, "base64").toString("utf8")
  const colon = text.indexOf(":")
  return colon < 0 ? undefined : { user: text.slice(0, colon), password: text.slice(colon + 1) }
}

export class ProxyAuth extends Context.Service<ProxyAuth, {
  /** false: no users configured, every request passes without a check. */
  readonly enabled: boolean
  /** Checks a Proxy-Authorization value; missing or wrong → ProxyAuthRequired (407). */
  readonly check: (header: string | undefined) => Effect.Effect<void, ProxyAuthRequired>
}>()("gatehouse/ProxyAuth") {
  static readonly layerWith = (settings: ProxyAuthSettings) =>
    Layer.sync(ProxyAuth, () => {
      const users = new Map(Object.entries(settings.users))
      const realm = settings.realm
      const good = new Set<string>()
      const bad = new Set<string>()
      const remember = (set: Set<string>, key: string) => {
        if (set.size >= CACHE_MAX) set.clear()
        set.add(key)
      }
      const refuse = (reason: string) => Effect.fail(new ProxyAuthRequired({ realm, reason }))
      if (users.size === 0) return ProxyAuth.of({ enabled: false, check: () => Effect.void })
      return ProxyAuth.of({
        enabled: true,
        check: (header) => {
          if (header === undefined || header === "") return refuse("proxy authentication required")
          const key = createHash("sha256").update(header).digest("base64")
          if (good.has(key)) return Effect.void
          if (bad.has(key)) return refuse("invalid proxy credentials")
          const creds = parseBasic(header)
          if (creds === undefined) return refuse("expected Proxy-Authorization: Basic credentials")
          const stored = users.get(creds.user)
          return Effect.flatMap(
            Effect.promise(() => verifyPassword(creds.password, stored ?? DUMMY_HASH)),
            (ok) => {
              if (ok && stored !== undefined) {
                remember(good, key)
                return Effect.void
              }
              remember(bad, key)
              return refuse("invalid proxy credentials")
            }
          )
        }
      })
    })

  static readonly layer = Layer.unwrap(Effect.map(Config, (c) => ProxyAuth.layerWith(c.security.proxy_auth)))
}
