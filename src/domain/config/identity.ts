import * as Schema from "effect/Schema"
import { passwordHashProblem } from "../passwordHash.ts"
import { withDefault } from "./withDefault.ts"

/**
 * A stored password: bcrypt ("$2b$10$...", bcryptjs/htpasswd -B) or scrypt in Gatehouse's format
 * "scrypt$N$r$p$<salt base64>$<hash base64>" (node:crypto scrypt, keylen = decoded hash length).
 */
export const PasswordHash = Schema.String.pipe(
  Schema.check(Schema.isPattern(
    /^(\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}|scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*)$/,
    { message: `expected a bcrypt hash ("$2b$10$...") or "scrypt$N$r$p$salt$hash"` }
  )),
  // The right shape is not enough: parameters node:crypto refuses would make every login a 500.
  Schema.check(Schema.makeFilter((s: string) => passwordHashProblem(s)))
)

/** `security.proxy_auth`: Basic proxy authentication (RFC 9110 §11.7.1) for forward and CONNECT requests. */
export const ProxyAuthSettings = Schema.Struct({
  users: withDefault(Schema.Record(Schema.String, PasswordHash), {}),
  realm: withDefault(Schema.String.pipe(Schema.check(Schema.isPattern(/^[^"\\\r\n]*$/, { message: "expected a realm without quotes" }))), "gatehouse")
})
export type ProxyAuthSettings = typeof ProxyAuthSettings.Type
