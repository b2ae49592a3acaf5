// Bench options from env and argv.
import path from "node:path";

export const WORKLOADS = ["reverse64", "reverse1000", "forward64", "tunnel", "cachehit", "tracingoff", "samecore"] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface Options {
  readonly rounds: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly threads: number;
  readonly tunnelBytes: number;
  readonly only: readonly WorkloadName[];
  readonly gatehouseCmd: string | undefined;
  readonly gatehouseConfigTemplate: string | undefined;
  readonly profile: boolean;
  readonly check: boolean;
  readonly timeoutS: number | undefined;
  readonly repoRoot: string;
  readonly resultsDir: string;
}

/** Bad env or argv: reported without a stack trace. */
export class UsageError extends Error {}

const positiveNumber = (name: string, fallback: number, allowZero = false): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !allowZero)) {
    throw new UsageError(`${name} must be a positive number, got "${raw}"`);
  }
  return value;
};

const isWorkload = (name: string): name is WorkloadName => (WORKLOADS as readonly string[]).includes(name);

const parseOnly = (raw: string | undefined): readonly WorkloadName[] => {
  if (raw === undefined || raw.trim() === "") return WORKLOADS;
  const names = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const name of names) {
    if (!isWorkload(name)) throw new UsageError(`BENCH_ONLY: unknown workload "${name}" (known: ${WORKLOADS.join(",")})`);
  }
  return WORKLOADS.filter((w) => names.includes(w));
};

const USAGE = `usage: node bench/run.ts [--profile] [--check]
env: BENCH_ROUNDS (2) BENCH_DURATION (8 s) BENCH_WARMUP (1 s) BENCH_THREADS (1)
     BENCH_TUNNEL_MB (1024) BENCH_ONLY (${WORKLOADS.join(",")}) BENCH_TIMEOUT (s)
     GATEHOUSE_CMD (shell command; "--config F --host H --port N" is appended)
     GATEHOUSE_CONFIG (YAML template with \${PORT} \${ORIGIN_PORT} \${SINK_PORT})`;

export const readOptions = (argv: readonly string[]): Options => {
  const flags = new Set(argv);
  if (flags.has("--help") || flags.has("-h")) {
    console.log(USAGE);
    process.exit(0);
  }
  for (const flag of flags) {
    if (flag !== "--profile" && flag !== "--check") throw new UsageError(`unknown argument "${flag}"\n${USAGE}`);
  }
  const repoRoot = path.resolve(import.meta.dirname, "..", "..");
  const timeout = process.env["BENCH_TIMEOUT"];
  return {
    rounds: Math.round(positiveNumber("BENCH_ROUNDS", 2)),
    durationS: positiveNumber("BENCH_DURATION", 8),
    warmupS: positiveNumber("BENCH_WARMUP", 1, true),
    threads: Math.round(positiveNumber("BENCH_THREADS", 1)),
    tunnelBytes: Math.round(positiveNumber("BENCH_TUNNEL_MB", 1024) * 1024 * 1024),
    only: parseOnly(process.env["BENCH_ONLY"]),
    gatehouseCmd: process.env["GATEHOUSE_CMD"] || undefined,
    gatehouseConfigTemplate: process.env["GATEHOUSE_CONFIG"] || undefined,
    profile: flags.has("--profile"),
    check: flags.has("--check"),
    timeoutS: timeout === undefined || timeout === "" ? undefined : positiveNumber("BENCH_TIMEOUT", 1),
    repoRoot,
    resultsDir: path.join(repoRoot, "bench", "results"),
  };
};
