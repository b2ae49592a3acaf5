/** RFC 9111 §4.1: Vary. One stored variant per distinct value set of the nominated request fields (pure). */
import type { IncomingHttpHeaders } from "node:http"

/** Lowercase, deduplicated, sorted field names; "*" when Vary contains "*" (never matches, §4.1). */
export const parseVary = (header: string | ReadonlyArray<string> | undefined): ReadonlyArray<string> | "*" => {
  if (header === undefined) return []
  const value = typeof header === "string" ? header : header.join(",")
  const names = new Set<string>()
  for (const part of value.split(",")) {
    const n = part.trim().toLowerCase()
    if (n === "*") return "*"
    if (n !== "") names.add(n)
  }
  return [...names].sort()
}

/** Whitespace-normalised field value (§4.1 allows normalising); arrays joined as one list. */
const normalise = (v: string | ReadonlyArray<string> | undefined): string => {
  if (v === undefined) return "\u0000"
  const s = typeof v === "string" ? v : v.join(", ")
  return s.replace(/\s*,\s*/g, ",").replace(/\s+/g, " ").trim()
}

/** Per-field normalisers: e.g. Accept-Encoding → the coding the compressor would pick for it. */
export type FieldNormalisers = Readonly<Record<string, (value: string | Array<string> | undefined) => string>>

/** The secondary key: "" without Vary; otherwise name=value lines of the request's nominated fields. */
export const variantSignature = (names: ReadonlyArray<string>, headers: IncomingHttpHeaders, normalisers?: FieldNormalisers): string => {
  if (names.length === 0) return ""
  let out = ""
  for (const name of names) {
    const n = normalisers?.[name]
    out += `${name}=${n === undefined ? normalise(headers[name]) : n(headers[name])}\n`
  }
  return out
}
