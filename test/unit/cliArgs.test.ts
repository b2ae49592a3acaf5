import { describe, expect, it } from "@effect/vitest"
import { parseCliArgs, USAGE } from "../../src/domain/cliArgs.ts"

describe("command-line flags", () => {
  it("parses --config, --host, --port (both spellings) and --check-config", () => {
    const r = parseCliArgs(["--config", "a.yaml", "--host=0.0.0.0", "--port", "9000", "--check-config"])
    expect(r).toEqual({ ok: true, args: { config: "a.yaml", host: "0.0.0.0", port: "9000", env: undefined, checkConfig: true, help: false } })
  })
  it("rejects unknown flags and missing values", () => {
    expect(parseCliArgs(["--bogus"]).ok).toBe(false)
    expect(parseCliArgs(["--port"]).ok).toBe(false)
  })
  it("--help says where the --env overlay is read: beside the main file, as loadConfig does (test/unit/configFiles.test.ts)", () => {
    expect(USAGE).toContain("--env NAME       merge the overlay beside the main file over it: FILE.NAME.yaml for --config FILE.yaml")
    expect(USAGE).toContain("(config/proxy.NAME.yaml by default)")
    expect(USAGE).not.toContain("merge config/proxy.NAME.yaml over the main file")
  })
})
