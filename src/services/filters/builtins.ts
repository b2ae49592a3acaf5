/** The registered filters, in the order they run. A new filter: one file, one line here. */
import { contentInspection } from "./contentInspection.ts"
import { domainFilter } from "./domainFilter.ts"
import type { FilterPlugin } from "./FilterPlugin.ts"
import { ipAcl } from "./ipAcl.ts"

export const BUILTIN_FILTERS: ReadonlyArray<FilterPlugin> = [
  ipAcl,
  domainFilter,
  contentInspection
]
