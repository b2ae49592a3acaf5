/** Pure parsers for the human units used in config files: durations ("30s", "2m") and sizes ("10MB"). */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const SIZE_UNITS: Record<string, number> = {
  b: 1, kb: 1024, k: 1024, kib: 1024, mb: 1024 ** 2, m: 1024 ** 2, mib: 1024 ** 2,
  gb: 1024 ** 3, g: 1024 ** 3, gib: 1024 ** 3
}
const NUMBER_UNIT = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/

/** "30s" | "2m" | "1500ms" | "1h" | 30 (seconds) → milliseconds, or undefined when malformed. */
export const parseDurationMs = (input: string | number): number | undefined => {
  if (typeof input === "number") return Number.isFinite(input) && input >= 0 ? input * 1000 : undefined
  const m = NUMBER_UNIT.exec(input)
  if (m === null) return undefined
  const unit = (m[2] ?? "").toLowerCase() || "s"
  const factor = DURATION_UNITS[unit]
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor)
}

/** "10MB" | "512KB" | "1GB" | 1024 (bytes) → bytes (binary multiples), or undefined when malformed. */
export const parseSizeBytes = (input: string | number): number | undefined => {
  if (typeof input === "number") return Number.isInteger(input) && input >= 0 ? input : undefined
  const m = NUMBER_UNIT.exec(input)
  if (m === null) return undefined
  const unit = (m[2] ?? "").toLowerCase() || "b"
  const factor = SIZE_UNITS[unit]
  return factor === undefined ? undefined : Math.floor(Number(m[1]) * factor)
}
