/**
 * Domain filter (security.filtering): blocklist or allowlist of exact / wildcard / suffix domain
 * patterns, matched on the normalised host of forward requests, CONNECT targets and reverse-proxy
 * Host headers. In blocklist mode `domains.allowed` holds exceptions; in allowlist mode a host must
 * match `domains.allowed` and `domains.blocked` still wins.
 */
import { compileDomainList } from "../../domain/domainMatcher.ts"
import { Blocked } from "../../domain/errors.ts"
import type { FilterPlugin, FilterRequest } from "./FilterPlugin.ts"

const blocked = (req: FilterRequest, rule: string, why: string) =>
  new Blocked({ filter: "domain", subject: req.host ?? req.rawHost, rule, reason: `host "${req.host ?? req.rawHost}" ${why}` })

export const domainFilter: FilterPlugin = {
  name: "domain",
  compile: ({ filtering }) => {
    const block = compileDomainList(filtering.domains.blocked)
    const allow = compileDomainList(filtering.domains.allowed)
    const allowlist = filtering.mode === "allowlist"
    if (!allowlist && block.size === 0) return undefined
    return {
      name: "domain",
      request: (req) => {
        const host = req.host
        if (host === undefined) {
          // No host name at all (HTTP/1.0 without Host, or an empty Host, RFC 9112 §3.2): a blocklist
          // has nothing to match, as when it is empty; an allowlist admits only the names it lists.
          if (req.rawHost !== "") return blocked(req, "security.filtering (invalid host name)", "is not a valid host name")
          return allowlist ? blocked(req, "security.filtering.mode: allowlist", "is not in security.filtering.domains.allowed") : undefined
        }
        const hit = block.match(host)
        if (allowlist) {
          if (hit !== undefined) return blocked(req, `security.filtering.domains.blocked: ${hit}`, `is blocked by rule "${hit}"`)
          return allow.match(host) === undefined
            ? blocked(req, "security.filtering.mode: allowlist", "is not in security.filtering.domains.allowed")
            : undefined
        }
        if (hit === undefined || allow.match(host) !== undefined) return undefined
        return blocked(req, `security.filtering.domains.blocked: ${hit}`, `is blocked by rule "${hit}"`)
      }
    }
  }
}
