import { describe, expect, it } from "@effect/vitest"
import { parseCliArgs } from "../../src/domain/cliArgs.ts"

describe("command-line flags", () => {
  it("parses --config, --host, --port (both spellings) and --check-config", () => {
    const r = parseCliArgs(["--config", "a.yaml", "--host=0.0.0.0", "--port", "9000", "--check-config"])
    expect(r).toEqual({ ok: true, args: { config: "a.yaml", host: "0.0.0.0", port: "9000", env: undefined, checkConfig: true, help: false } })
  })
  it("rejects unknown flags and missing values", () => {
    expect(parseCliArgs(["--bogus"]).ok).toBe(false)
    expect(parseCliArgs(["--port"]).ok).toBe(false)
  })
})
