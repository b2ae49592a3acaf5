// Same-core A/B: CPU time per request of two proxies pinned to the same core at the same time.
//
// On two shared cores req/s ratios move ±10–30 % between runs (wrk, origin and proxy compete, other
// tenants steal time). Here proxy A and proxy B both run on CPU 0, at once, each driven by its own
// wrk; wrk and the origin run on CPU 1. Each proxy's CPU time (utime + stime from /proc) divided by
// the requests its wrk completed gives CPU per request; whatever slows the core slows both, so their
// ratio is steady to a few percent. It answers "which build does less work per request", not "how
// many requests per second".
//
// Usage: npm run bench:pinned            (A = baseline proxy, B = Gatehouse, reverse proxy, 64 connections)
// env:   PINNED_A_CMD / PINNED_B_CMD     shell commands; " --config F --host H --port N" is appended
//                                        (default A: node dist/bench/baseline-proxy.js, B: Gatehouse as `npm start` runs it)
//        PINNED_CONFIG_EXTRA             YAML lines appended to both proxies' config (e.g. "cache: {enabled: true}")
//        PINNED_A_CONFIG_EXTRA / PINNED_B_CONFIG_EXTRA   ... to one proxy's config only
//        PINNED_MODE (reverse|forward)   origin-form GET / or absolute-form through the proxy
//        PINNED_CONNECTIONS (64)  PINNED_DURATION (10 s)  PINNED_ROUNDS (3)  PINNED_WARMUP (8 s: two proxies share
//                                        one core, and without Maglev Gatehouse reaches full speed seconds later)
//        PINNED_SKIP_BUILD=1             do not run `npm run build` first (npm run bench's samecore workload)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultConfigYaml } from "./lib/config.ts";
import { clockTicks, processTicks } from "./lib/cpu.ts";
import { startCommandLine } from "./lib/startFlags.ts";
import { freePort, killAllSync, spawnChild, stopAll, waitForAnnouncedPort, waitForReadiness } from "./lib/procs.ts";
import type { Child } from "./lib/procs.ts";
import { median } from "./lib/report.ts";
import { ensureWrk, runWrk, writeWrkScripts } from "./lib/wrk.ts";

const HOST = "127.0.0.1";
const PROXY_CPU = 0;
const DRIVER_CPU = 1;
const repoRoot = path.resolve(import.meta.dirname, "..");

const num = (name: string, fallback: number): number => {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
};

const yamlLines = (name: string): string[] => (process.env[name] ?? "").split("\n").filter((l) => l.trim() !== "");

const options = {
  a: process.env["PINNED_A_CMD"] ?? `node ${path.join("dist", "bench", "baseline-proxy.js")}`,
  b: process.env["PINNED_B_CMD"] ?? startCommandLine(repoRoot),
  extra: {
    A: [...yamlLines("PINNED_CONFIG_EXTRA"), ...yamlLines("PINNED_A_CONFIG_EXTRA")],
    B: [...yamlLines("PINNED_CONFIG_EXTRA"), ...yamlLines("PINNED_B_CONFIG_EXTRA")],
  },
  mode: process.env["PINNED_MODE"] === "forward" ? "forward" : "reverse",
  connections: Math.round(num("PINNED_CONNECTIONS", 64)),
  durationS: Math.round(num("PINNED_DURATION", 10)),
  rounds: Math.round(num("PINNED_ROUNDS", 3)),
  warmupS: Math.round(num("PINNED_WARMUP", 8)),
} as const;

interface Side { readonly name: "A" | "B"; readonly child: Child; readonly port: number }
interface Sample { readonly requests: number; readonly cpuMs: number }

/** Peak resident memory since the process started (VmHWM), MiB. */
const peakRssMiB = (pid: number): number => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
};

/** The top-level key a YAML line sets ("security: {...}" → "security"), if any. */
const topKey = (line: string): string | undefined => /^([a-z_]+):/.exec(line)?.[1];

const main = async (): Promise<void> => {
  ensureWrk();
  execFileSync("taskset", ["-c", "0", "true"]); // fails early where CPU pinning is not possible
  if (process.env["PINNED_SKIP_BUILD"] !== "1") { // (npm run bench has built already)
    console.log("pinned: npm run build");
    execFileSync("npm", ["run", "--silent", "build"], { cwd: repoRoot, stdio: "inherit" });
  }
  const logDir = mkdtempSync(path.join(os.tmpdir(), "gatehouse-pinned-"));
  const pin = (cpu: number): string => `taskset -c ${cpu}`;
  const origin = spawnChild("origin", ["node", path.join("dist", "bench", "origin.js")], { shellCommand: pin(DRIVER_CPU), stdout: "pipe", cwd: repoRoot, logDir });
  const originPort = await waitForAnnouncedPort(origin);
  const start = async (name: "A" | "B", cmd: string): Promise<Side> => {
    const port = await freePort();
    const file = path.join(logDir, `${name}.yaml`);
    // metrics on a free port (both proxies cannot have 9090); a top-level key the extra lines set
    // replaces the generated line of that key (YAML keys may not repeat)
    const extra = options.extra[name];
    const keys = new Set(extra.map(topKey));
    const generated = defaultConfigYaml(HOST, port, originPort, undefined, ["metrics: {port: 0}"])
      .split("\n").filter((l) => topKey(l) === undefined || !keys.has(topKey(l)));
    writeFileSync(file, [...generated, ...extra, ""].join("\n"));
    const child = spawnChild(name, ["--config", file, "--host", HOST, "--port", String(port)], {
      shellCommand: `${pin(PROXY_CPU)} ${cmd}`, stdout: "ignore", stdin: "ignore", cwd: repoRoot, logDir,
    });
    return { name, child, port };
  };
  const sides = [await start("A", options.a), await start("B", options.b)] as const;
  await Promise.all(sides.map((s) => waitForReadiness(s.child, s.port)));
  const scripts = writeWrkScripts(logDir, originPort);
  const script = options.mode === "forward" ? scripts.forward : scripts.reverse;
  console.log(`pinned: A = ${options.a}\n        B = ${options.b}\n        ${options.mode}, ${options.connections} connections, ` +
    `${options.rounds} × ${options.durationS} s; proxies on CPU ${PROXY_CPU}, wrk and origin on CPU ${DRIVER_CPU}`);

  const drive = (side: Side, seconds: number) =>
    runWrk({ port: side.port, connections: options.connections, threads: 1, durationS: seconds, script, logDir, cwd: repoRoot, cpu: DRIVER_CPU });
  const samples: Record<"A" | "B", Sample[]> = { A: [], B: [] };
  const ratios: number[] = [];
  // every request each proxy served, warm-up included (to turn a --cpu-prof profile into µs per request)
  const served: Record<"A" | "B", number> = { A: 0, B: 0 };
  (await Promise.all(sides.map((s) => drive(s, options.warmupS)))).forEach((r, i) => { served[sides[i]!.name] += r.requests; });
  for (let round = 1; round <= options.rounds; round++) {
    const before = sides.map((s) => processTicks(s.child.pid));
    const results = await Promise.all(sides.map((s) => drive(s, options.durationS)));
    const line: string[] = [];
    sides.forEach((side, i) => {
      const r = results[i];
      if (r === undefined) return;
      const cpuMs = ((processTicks(side.child.pid) - (before[i] ?? 0)) / clockTicks) * 1000;
      samples[side.name].push({ requests: r.requests, cpuMs });
      served[side.name] += r.requests;
      line.push(`${side.name} ${((cpuMs * 1000) / Math.max(1, r.requests)).toFixed(1)} µs/req (${r.rps.toFixed(0)} req/s${r.errors.total > 0 ? `, ${r.errors.total} errors` : ""})`);
    });
    const [a, b] = [samples.A.at(-1), samples.B.at(-1)];
    if (a !== undefined && b !== undefined) ratios.push((b.cpuMs / Math.max(1, b.requests)) / (a.cpuMs / Math.max(1, a.requests)));
    console.log(`[round ${round}/${options.rounds}] ${line.join("   ")}   B/A ${ratios.at(-1)?.toFixed(3)}`);
  }
  const peaks = sides.map((s) => `${s.name} ${peakRssMiB(s.child.pid).toFixed(0)} MiB`).join(", ");
  await stopAll();
  const perReq = (xs: readonly Sample[]) => median(xs.map((x) => (x.cpuMs * 1000) / Math.max(1, x.requests)));
  console.log(`\nCPU per request (median of ${options.rounds}): A ${perReq(samples.A).toFixed(1)} µs, B ${perReq(samples.B).toFixed(1)} µs, ` +
    `B/A ${median(ratios).toFixed(3)} (rounds ${ratios.map((r) => r.toFixed(3)).join(", ")})\npeak RSS (VmHWM): ${peaks}\nrequests served, warm-up included: A ${served.A}, B ${served.B}`);
  rmSync(logDir, { recursive: true, force: true });
};

process.on("exit", killAllSync);
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));
try {
  await main();
  process.exit(0);
} catch (error) {
  console.error(`pinned failed: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll();
  process.exit(1);
}
