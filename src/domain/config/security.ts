import * as Schema from "effect/Schema"
import { parseCidr } from "../cidr.ts"
import { parseDomainPattern } from "../domainMatcher.ts"
import { BearerToken } from "./bearerToken.ts"
import { SizeBytes } from "./units.ts"
import { withDefault } from "./withDefault.ts"
import { ProxyAuthSettings } from "./identity.ts"
import { RateLimitingSettings } from "./rateLimiting.ts"
import { ResponseHeaders } from "./responseHeaders.ts"
import { UpstreamTls } from "./tls.ts"

/**
 * The `security:` section. Part A (issue 4: Filter service) owns `filtering`, `access_control`,
 * `inspection` and `filters_file`; part B (rate limiting, proxy auth, admin token, SSRF guard,
 * security headers, TLS) adds its keys as further fields of the same Struct (`SecuritySection`).
 */

/** A domain rule: exact ("malicious.com"), wildcard ("*.ads.example.com", subdomains only) or suffix (".example.com"). */
export const DomainPattern = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) =>
    parseDomainPattern(s) === undefined
      ? `expected a domain such as "malicious.com", "*.ads.example.com" or ".example.com"`
      : undefined
  ))
)

export const FilteringRules = Schema.Struct({
  mode: withDefault(Schema.Literals(["blocklist", "allowlist"]), "blocklist"),
  domains: withDefault(
    Schema.Struct({
      blocked: withDefault(Schema.Array(DomainPattern), []),
      allowed: withDefault(Schema.Array(DomainPattern), [])
    }),
    {}
  )
})
export type FilteringRules = typeof FilteringRules.Type

/** An IPv4 or IPv6 CIDR ("10.0.0.0/8", "::1/128") or a bare address (a /32 or /128). */
export const CidrString = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) =>
    parseCidr(s) === undefined ? `expected a CIDR such as "10.0.0.0/8" or "::1/128"` : undefined
  ))
)

export const AccessControlRules = Schema.Struct({
  allow: withDefault(Schema.Array(CidrString), ["0.0.0.0/0", "::/0"]),
  deny: withDefault(Schema.Array(CidrString), [])
})
export type AccessControlRules = typeof AccessControlRules.Type

export const Sha256Hex = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[0-9A-Fa-f]{64}$/, { message: "expected a SHA-256 digest as 64 hex digits" }))
)

/** A media type ("application/x-msdownload") or a whole top-level type ("video/*"). */
export const MediaTypePattern = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z0-9!#$&^_.+-]+\/(\*|[A-Za-z0-9!#$&^_.+-]+)$/, {
    message: `expected a media type such as "application/x-msdownload" or "video/*"`
  }))
)

/** Response-body inspection ("malware"): streamed scan, whole-body digests within a bound, content types. */
export const InspectionRules = Schema.Struct({
  enabled: withDefault(Schema.Boolean, true),
  /** Detect the EICAR anti-virus test signature anywhere in a body (also across chunk boundaries). */
  eicar: withDefault(Schema.Boolean, true),
  /** SHA-256 digests (hex) of whole bodies to refuse; checked for bodies up to max_digest_bytes. */
  sha256: withDefault(Schema.Array(Sha256Hex), []),
  max_digest_bytes: withDefault(SizeBytes, "1MB"),
  /** Bodies with a Content-Length up to this are held (with their head) until scanned whole: a clean 403. */
  hold_bytes: withDefault(SizeBytes, "64KB"),
  blocked_content_types: withDefault(Schema.Array(MediaTypePattern), [])
})
export type InspectionRules = typeof InspectionRules.Type

/** The rules that `config/filters.yaml` may hold (same shape as in `security:`); reloaded on SIGHUP. */
export const FilterRules = Schema.Struct({
  filtering: withDefault(FilteringRules, {}),
  access_control: withDefault(AccessControlRules, {}),
  inspection: withDefault(InspectionRules, {})
})
export type FilterRules = typeof FilterRules.Type

export const SecuritySection = Schema.Struct({
  filters_file: withDefault(Schema.String, "config/filters.yaml"),
  filtering: withDefault(FilteringRules, {}),
  access_control: withDefault(AccessControlRules, {}),
  inspection: withDefault(InspectionRules, {}),
  rate_limiting: withDefault(RateLimitingSettings, {}),
  proxy_auth: withDefault(ProxyAuthSettings, {}),
  /** Bearer token for /admin/*; "" = loopback clients only. */
  admin_token: withDefault(BearerToken, ""),
  /** Forward/CONNECT targets in these ranges are allowed although loopback/link-local (SSRF guard). */
  allow_private_destinations: withDefault(Schema.Array(CidrString), []),
  headers: withDefault(ResponseHeaders, {}),
  upstream_tls: withDefault(UpstreamTls, {})
})
export type SecuritySection = typeof SecuritySection.Type
