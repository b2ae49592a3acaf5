/**
 * Domain lists: exact ("malicious.com": that name only), wildcard ("*.ads.example.com": every name
 * below it, at any depth, not the name itself) and suffix (".example.com": the name and every name
 * below it). Compiled once into a single hash map keyed by the normalised name; a lookup probes the
 * host itself and then each parent suffix, one probe per label, whatever the list size. Pure.
 */
import { normaliseHost } from "./hostName.ts"

interface Entry {
  /** Rule text matching the name itself (exact or suffix). */
  self?: string
  /** Rule text matching names below it (wildcard or suffix). */
  below?: string
}

export interface DomainList {
  readonly size: number
  /** The rule text that matches the (already normalised) host, or undefined. */
  readonly match: (host: string) => string | undefined
}

export type DomainPatternKind = "exact" | "wildcard" | "suffix"

/** Parse one rule: kind and normalised name; undefined when the name is not a valid host. */
export const parseDomainPattern = (text: string): { readonly kind: DomainPatternKind; readonly name: string } | undefined => {
  const kind: DomainPatternKind = text.startsWith("*.") ? "wildcard" : text.startsWith(".") ? "suffix" : "exact"
  const raw = kind === "wildcard" ? text.slice(2) : kind === "suffix" ? text.slice(1) : text
  if (raw.includes("*")) return undefined
  const name = normaliseHost(raw)
  return name === undefined ? undefined : { kind, name }
}

export const compileDomainList = (patterns: ReadonlyArray<string>): DomainList => {
  const table = new Map<string, Entry>()
  for (const text of patterns) {
    const p = parseDomainPattern(text)
    if (p === undefined) throw new Error(`invalid domain pattern: ${text}`)
    let e = table.get(p.name)
    if (e === undefined) table.set(p.name, e = {})
    if (p.kind !== "wildcard") e.self ??= text
    if (p.kind !== "exact") e.below ??= text
  }
  return {
    size: table.size,
    match: (host) => {
      if (table.size === 0) return undefined
      const own = table.get(host)?.self
      if (own !== undefined) return own
      let dot = host.indexOf(".")
      while (dot >= 0) {
        const below = table.get(host.slice(dot + 1))?.below
        if (below !== undefined) return below
        dot = host.indexOf(".", dot + 1)
      }
      return undefined
    }
  }
}
