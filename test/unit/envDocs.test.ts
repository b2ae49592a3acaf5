/** Every environment override the config reads is documented in the README's table and in config/proxy.yaml's comments. */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { ENV_OVERRIDES } from "../../src/domain/config/overrides.ts"

const root = new URL("../../", import.meta.url)
const readme = readFileSync(new URL("README.md", root), "utf8")
const yaml = readFileSync(new URL("config/proxy.yaml", root), "utf8")

describe("environment overrides are documented", () => {
  for (const [name, path] of ENV_OVERRIDES) {
    it(`${name} → ${path.join(".")} is in README.md and config/proxy.yaml`, () => {
      expect(readme).toContain(`\`${name}\``)
      expect(yaml).toContain(name)
    })
  }
})
