// What `npm start` runs (package.json "start": "node <flags> <entry>", e.g. "node --max-semi-space-size=16
// dist/gatehouse/main.js"), so the bench runs Gatehouse as it is deployed without keeping a second copy.
import { readFileSync } from "node:fs";
import path from "node:path";

export interface StartCommand {
  /** Node's own flags, before the entry */
  readonly nodeFlags: readonly string[];
  /** the script Node runs, relative to the repository root */
  readonly entry: string;
}

export const startCommand = (repoRoot: string): StartCommand => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { scripts?: Record<string, string> };
  const start = pkg.scripts?.["start"] ?? "";
  const words = start.trim().split(/\s+/);
  const entryAt = words.findIndex((word, i) => i > 0 && !word.startsWith("--"));
  if (words[0] !== "node" || entryAt < 0) throw new Error(`package.json "start" is not "node [flags] ENTRY": ${start}`);
  return { nodeFlags: words.slice(1, entryAt), entry: words[entryAt]! };
};

/** `npm start`'s command line as one shell string (for the bench's reports and PINNED_*_CMD defaults). */
export const startCommandLine = (repoRoot: string): string => {
  const { nodeFlags, entry } = startCommand(repoRoot);
  return ["node", ...nodeFlags, entry].join(" ");
};
