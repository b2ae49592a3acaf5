import * as Schema from "effect/Schema"

/**
 * A bearer token the proxy checks (`security.admin_token`, `cli.auth_token`): "" = none, else RFC 6750
 * §2.1 b64token syntax — letters, digits, "-", ".", "_", "~", "+", "/", then optional "=" padding.
 * A token with a space, a quote, a non-ASCII letter... cannot arrive in `Authorization: Bearer <token>`
 * as written, so it could never match: refused at decode instead.
 */
export const BearerToken = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^(?:[A-Za-z0-9\-._~+/]+=*)?$/, {
    message: `expected "" (no token) or a bearer token (RFC 6750 b64token): letters, digits and - . _ ~ + / with optional trailing "=", no spaces`
  }))
)
