// The `samecore` workload of `npm run bench`: bench:pinned's CPU per request, baseline against Gatehouse,
// run twice with the sides swapped (each side's position costs it a few per cent) and combined.
import { spawn } from "node:child_process";
import path from "node:path";
import type { Options } from "./options.ts";
import { startCommandLine } from "./startFlags.ts";

/** One bench:pinned run: its B/A ratio and rounds. */
export interface PinnedRun {
  readonly a: string;
  readonly b: string;
  readonly ratio: number;
  readonly rounds: readonly number[];
}

export interface SameCoreResult {
  /** Gatehouse's CPU per request over the baseline's: geometric mean of both orders. */
  readonly ratio: number | null;
  readonly runs: readonly PinnedRun[];
  readonly error: string | null;
}

const RESULT = /B\/A (\d+(?:\.\d+)?) \(rounds ([\d., ]+)\)/;

/** Runs `bench/pinned.ts` (as `npm run bench:pinned` does) with A and B given; resolves with its ratio or the reason it failed. */
const pinned = (options: Options, a: string, b: string): Promise<PinnedRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(options.repoRoot, "bench", "pinned.ts")], {
      cwd: options.repoRoot,
      env: { ...process.env, PINNED_A_CMD: a, PINNED_B_CMD: b, PINNED_SKIP_BUILD: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => { out += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { out += d.toString(); });
    child.on("error", reject);
    child.on("close", (code) => {
      const m = RESULT.exec(out);
      if (code !== 0 || m === null) return reject(new Error(`bench:pinned exited ${code}: ${out.trim().split("\n").slice(-2).join(" / ")}`));
      resolve({ a, b, ratio: Number(m[1]), rounds: m[2]!.split(",").map((r) => Number(r.trim())) });
    });
  });

export const runSameCore = async (options: Options): Promise<SameCoreResult> => {
  const baseline = `node ${path.join("dist", "bench", "baseline-proxy.js")}`;
  const gatehouse = options.gatehouseCmd ?? startCommandLine(options.repoRoot);
  const runs: PinnedRun[] = [];
  try {
    console.log("[samecore 1/2] bench:pinned, A = baseline, B = gatehouse");
    runs.push(await pinned(options, baseline, gatehouse));
    console.log(`[samecore 1/2] gatehouse/baseline ${runs[0]!.ratio.toFixed(3)} (rounds ${runs[0]!.rounds.join(", ")})`);
    console.log("[samecore 2/2] bench:pinned, A = gatehouse, B = baseline");
    runs.push(await pinned(options, gatehouse, baseline));
    console.log(`[samecore 2/2] baseline/gatehouse ${runs[1]!.ratio.toFixed(3)} (rounds ${runs[1]!.rounds.join(", ")})`);
  } catch (error) {
    return { ratio: null, runs, error: error instanceof Error ? error.message : String(error) };
  }
  return { ratio: Math.sqrt(runs[0]!.ratio / runs[1]!.ratio), runs, error: null };
};

export const formatSameCore = (r: SameCoreResult): string => {
  if (r.ratio === null) return `samecore: not measured (${r.error})`;
  const [first, second] = r.runs;
  return [
    "Same-core CPU per request (bench:pinned: both proxies on one core at once, reverse, 64 connections, both orders)",
    `  gatehouse/baseline ${r.ratio.toFixed(3)}x  (gatehouse as B: ${first!.ratio.toFixed(3)}; as A: ${(1 / second!.ratio).toFixed(3)})`,
    `  where the proxy's core is the limit, req/s ratio ~ ${(1 / r.ratio).toFixed(2)}x (informational: the req/s targets are the measure)`,
  ].join("\n");
};
