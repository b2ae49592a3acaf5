// What `npm start` runs (package.json "start": "[NAME=value ...] node <flags> <entry>", e.g.
// "MALLOC_ARENA_MAX=1 node --max-semi-space-size=16 dist/gatehouse/main.js"), so the bench runs
// Gatehouse as it is deployed without keeping a second copy of its settings.
import { readFileSync } from "node:fs";
import path from "node:path";

export interface StartCommand {
  /** environment variables set in front of the command */
  readonly env: Readonly<Record<string, string>>;
  /** Node's own flags, before the entry */
  readonly nodeFlags: readonly string[];
  /** the script Node runs, relative to the repository root */
  readonly entry: string;
}

const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/;

export const startCommand = (repoRoot: string): StartCommand => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { scripts?: Record<string, string> };
  const start = pkg.scripts?.["start"] ?? "";
  const words = start.trim().split(/\s+/);
  const env: Record<string, string> = {};
  let at = 0;
  for (let m = ASSIGNMENT.exec(words[at] ?? ""); m !== null; m = ASSIGNMENT.exec(words[++at] ?? "")) env[m[1]!] = m[2]!;
  const entryAt = words.findIndex((word, i) => i > at && !word.startsWith("--"));
  if (words[at] !== "node" || entryAt < 0) throw new Error(`package.json "start" is not "[NAME=value ...] node [flags] ENTRY": ${start}`);
  return { env, nodeFlags: words.slice(at + 1, entryAt), entry: words[entryAt]! };
};

/** `npm start`'s command as one shell command (`env NAME=value node ...`: it may follow `taskset -c N`). */
export const startCommandLine = (repoRoot: string): string => {
  const { env, nodeFlags, entry } = startCommand(repoRoot);
  const assignments = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  return [...(assignments.length > 0 ? ["env", ...assignments] : []), "node", ...nodeFlags, entry].join(" ");
};
