import { describe, expect, it } from "@effect/vitest"
import { compileAllowlist, resolveCommand } from "../../src/domain/cliAllowlist.ts"

const list = compileAllowlist([
  { configured: "/usr/bin/python3", real: "/usr/bin/python3.11" },
  { configured: "/usr/local/bin/node", real: "/opt/node/bin/node" }
])
const allowed = (command: string) => {
  const r = resolveCommand(list, command)
  return r._tag === "Allowed" ? r.program.configured : undefined
}

describe("cli allowlist", () => {
  it("accepts the configured path, its realpath and its basename", () => {
    expect(allowed("/usr/bin/python3")).toBe("/usr/bin/python3")
    expect(allowed("/usr/bin/python3.11")).toBe("/usr/bin/python3")
    expect(allowed("python3")).toBe("/usr/bin/python3")
    expect(allowed("node")).toBe("/usr/local/bin/node")
  })
  it("threat: allowlist bypass — refuses ../, ./, relative paths, other names and unlisted paths", () => {
    for (const bad of [
      "/usr/bin/../bin/python3", "/usr/bin//python3", "/usr/bin/./python3", "./python3", "../python3", "bin/python3",
      "python3.11", "/bin/sh", "/usr/bin/env", "sh", "python3 ", " python3", "python3;id", "$(python3)", "..", ".", "",
      "/usr/bin/python3/", "PYTHON3"
    ]) {
      expect(allowed(bad), bad).toBeUndefined()
    }
  })
  it("gives the reason for a refusal", () => {
    const r = resolveCommand(list, "/bin/sh")
    expect(r._tag === "Refused" && r.reason).toContain("not in cli.allowed_commands")
    const rel = resolveCommand(list, "./x")
    expect(rel._tag === "Refused" && rel.reason).toContain("no relative paths")
  })
})
