// The Node flags `npm start` gives Gatehouse (package.json "start": "node <flags> dist/src/main.js"),
// so the bench runs Gatehouse as it is deployed without keeping a second copy of them.
import { readFileSync } from "node:fs";
import path from "node:path";

export const startNodeFlags = (repoRoot: string): readonly string[] => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { scripts?: Record<string, string> };
  const words = (pkg.scripts?.["start"] ?? "").trim().split(/\s+/);
  if (words[0] !== "node") return [];
  const flags: string[] = [];
  for (const word of words.slice(1)) {
    if (!word.startsWith("--")) break;
    flags.push(word);
  }
  return flags;
};
