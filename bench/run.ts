// Gatehouse benchmark harness: baseline (raw Node + undici) vs Gatehouse,
// interleaved rounds of wrk workloads plus a CONNECT tunnel throughput test.
// Usage: npm run bench [-- --profile] [-- --check]   (see bench/README.md)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { defaultConfigYaml } from "./lib/config.ts";
import { readOptions, UsageError } from "./lib/options.ts";
import { startCommand, startCommandLine } from "./lib/startFlags.ts";
import type { Options } from "./lib/options.ts";
import { freePort, killAllSync, spawnChild, stopAll, waitForAnnouncedPort, waitForReadiness } from "./lib/procs.ts";
import type { Child } from "./lib/procs.ts";
import { formatReport, reportWorkload, toJson, writeResults } from "./lib/report.ts";
import type { ProcessName, WorkloadReport } from "./lib/report.ts";
import { formatSameCore, runSameCore } from "./lib/samecore.ts";
import type { SameCoreResult } from "./lib/samecore.ts";
import { ensureWrk, writeWrkScripts } from "./lib/wrk.ts";
import { buildWorkloads, extraProcesses, runWorkload } from "./lib/workloads.ts";
import type { Env, ProxyTarget } from "./lib/workloads.ts";

const HOST = "127.0.0.1";

/**
 * Every process of the run starts from the compiled output (`npm run build`, tsconfig.build.json →
 * dist/), as `npm start` runs Gatehouse: type stripping would cost each process startup time and
 * ~18–27 MiB of resident memory (the stripper's WebAssembly heap), Gatehouse and baselines alike.
 */
const compiled = (options: Options, script: string): string =>
  path.join(options.repoRoot, "dist", "bench", script.replace(/\.ts$/, ".js"));

/** Compiles src/ and bench/ with the package's own `build` script (incremental: quick when nothing changed). */
const build = (options: Options): void => {
  console.log("bench: npm run build");
  execFileSync("npm", ["run", "--silent", "build"], { cwd: options.repoRoot, stdio: "inherit" });
};

/** YAML lines appended to the config of the extra Gatehouse processes (metrics on a free port: 9090 is taken). */
const EXTRA_CONFIG: Record<Exclude<ProcessName, "baseline" | "gatehouse">, readonly string[]> = {
  "gatehouse-cache": ["cache: {enabled: true, backend: memory}", "metrics: {port: 0}"],
  // nothing is sampled, so nothing is exported; the endpoint is a closed local port all the same
  "gatehouse-tracing": ["tracing: {enabled: true, sample_ratio: 0, otlp_endpoint: \"http://127.0.0.1:9/v1/traces\"}", "metrics: {port: 0}"],
};

const configYaml = (options: Options, port: number, originPort: number, sinkPort: number | undefined, extra: readonly string[] = []): string => {
  if (options.gatehouseConfigTemplate !== undefined) {
    return readFileSync(options.gatehouseConfigTemplate, "utf8")
      .replaceAll("${PORT}", String(port))
      .replaceAll("${ORIGIN_PORT}", String(originPort))
      .replaceAll("${SINK_PORT}", String(sinkPort ?? 443)) + (extra.length === 0 ? "" : `\n${extra.join("\n")}\n`);
  }
  return defaultConfigYaml(HOST, port, originPort, sinkPort, extra);
};

/** Starts one of the bench's own helpers (origin, sink, tunnel baseline) and returns its port. */
const startHelper = async (name: string, script: string, options: Options, logDir: string): Promise<{ child: Child; port: number }> => {
  const child = spawnChild(name, [process.execPath, compiled(options, script)], { stdout: "pipe", cwd: options.repoRoot, logDir });
  return { child, port: await waitForAnnouncedPort(child) };
};

const startGatehouse = (options: Options, configFile: string, port: number, logDir: string, name = "gatehouse"): Child => {
  const cli = ["--config", configFile, "--host", HOST, "--port", String(port)];
  const profileFlags = ["--cpu-prof", "--cpu-prof-dir", options.resultsDir];
  const common = { stdout: "ignore", stdin: "ignore", cwd: options.repoRoot, logDir, graceMs: options.profile ? 10_000 : 3000 } as const;
  if (options.gatehouseCmd !== undefined) {
    const env = options.profile ? { NODE_OPTIONS: `${process.env["NODE_OPTIONS"] ?? ""} --cpu-prof --cpu-prof-dir=${options.resultsDir}`.trim() } : {};
    return spawnChild(name, cli, { ...common, shellCommand: options.gatehouseCmd, env });
  }
  const start = startCommand(options.repoRoot);
  const nodeFlags = [...start.nodeFlags, ...(options.profile ? profileFlags : [])];
  return spawnChild(name, [process.execPath, ...nodeFlags, start.entry, ...cli], { ...common, env: start.env });
};

const wrkVersion = (): string | null => {
  try {
    return execFileSync("wrk", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0] ?? null;
  } catch (error) {
    const stdout = (error as { stdout?: unknown }).stdout;
    return typeof stdout === "string" ? (stdout.split("\n")[0] ?? null) : null;
  }
};

/** The workloads wrk drives (all but the tunnel's own client and samecore's bench:pinned runs). */
const isWrkWorkload = (w: string): boolean => w !== "tunnel" && w !== "samecore";

/** Rough duration of the whole run; the watchdog allows twice that plus a minute. */
const estimateSeconds = (options: Options): number => {
  const http = options.only.filter(isWrkWorkload).length;
  const perHttpRun = options.warmupS + options.durationS + 3;
  const tunnel = options.only.includes("tunnel") ? 3 * (options.tunnelBytes / 100e6 + 2) : 0;
  const samecore = options.only.includes("samecore") ? 2 * 55 : 0; // two bench:pinned runs: 8 s warm-up, 3 × 10 s
  return 60 + options.rounds * 2 * (http * perHttpRun + tunnel) + samecore;
};

const main = async (options: Options): Promise<number> => {
  const startedAt = Date.now();
  const logDir = mkdtempSync(path.join(os.tmpdir(), "gatehouse-bench-"));
  const needTunnel = options.only.includes("tunnel");
  const needHttp = options.only.some(isWrkWorkload);
  if (needHttp) ensureWrk();
  build(options);
  console.log(`bench: rounds=${options.rounds} duration=${options.durationS}s warmup=${options.warmupS}s ` +
    `workloads=${options.only.join(",")} logs=${logDir}`);
  const reports: WorkloadReport[] = [];
  if (needHttp || needTunnel) await runWorkloads(options, logDir, needTunnel, reports);
  if (shutdownPromise !== undefined) return shutdownPromise;
  // after every other workload, alone on the machine: it pins its own proxies to one core
  let sameCore: SameCoreResult | undefined;
  if (options.only.includes("samecore")) {
    sameCore = await runSameCore(options);
    if (shutdownPromise !== undefined) return shutdownPromise;
  }

  if (reports.length > 0) console.log(`\n${formatReport(reports)}\n`);
  if (sameCore !== undefined) console.log(`${formatSameCore(sameCore)}\n`);
  const file = writeResults(options.resultsDir, {
    generatedAt: new Date().toISOString(),
    options: {
      rounds: options.rounds, durationS: options.durationS, warmupS: options.warmupS, threads: options.threads,
      tunnelBytes: options.tunnelBytes, only: options.only, profile: options.profile,
      gatehouseCmd: options.gatehouseCmd ?? startCommandLine(options.repoRoot),
    },
    environment: { node: process.version, wrk: wrkVersion(), cpus: os.cpus().length, loadavg: os.loadavg() },
    workloads: reports.map(toJson),
    ...(sameCore === undefined ? {} : { sameCore }),
  });
  console.log(`results: ${path.relative(process.cwd(), file)}`);
  if (options.profile) {
    const profiles = readdirSync(options.resultsDir)
      .filter((f) => f.endsWith(".cpuprofile") && statSync(path.join(options.resultsDir, f)).mtimeMs >= startedAt);
    console.log(`cpu profiles in ${options.resultsDir}: ${profiles.join(", ") || "(none written: did Gatehouse exit cleanly on SIGTERM?)"}`);
  }
  const failed = reports.some((r) => r.workload.runs.baseline.error !== null || r.workload.runs.gatehouse.error !== null);
  if (failed) console.log(`child logs kept in ${logDir}`);
  else rmSync(logDir, { recursive: true, force: true });
  const allPass = reports.every((r) => r.checks.every((c) => c.pass));
  return options.check && !allPass ? 2 : 0;
};

/** The wrk and tunnel workloads: origin, sink, baselines and Gatehouse processes for them, then each workload in turn. */
const runWorkloads = async (options: Options, logDir: string, needTunnel: boolean, reports: WorkloadReport[]): Promise<void> => {
  const origin = await startHelper("origin", "origin.ts", options, logDir);
  const sink = needTunnel ? await startHelper("sink", "sink.ts", options, logDir) : undefined;
  const tunnelBaseline = needTunnel ? await startHelper("tunnel-baseline", "tunnel-baseline.ts", options, logDir) : undefined;

  const [baselinePort, gatehousePort] = [await freePort(), await freePort()];
  const configPath = path.join(logDir, "gatehouse.yaml");
  writeFileSync(configPath, configYaml(options, gatehousePort, origin.port, sink?.port));
  // Passed relative to the children's cwd (the repo root): works whether the proxy
  // resolve()s or join()s --config against its cwd.
  const configFile = path.relative(options.repoRoot, configPath);

  const baseline = spawnChild(
    "baseline",
    [process.execPath, compiled(options, "baseline-proxy.ts"), "--config", configFile, "--host", HOST, "--port", String(baselinePort)],
    { stdout: "ignore", cwd: options.repoRoot, logDir },
  );
  const gatehouse = startGatehouse(options, configFile, gatehousePort, logDir);
  // Gatehouse in other configurations, only for the workloads that compare two setups
  const extras: Partial<Record<ProcessName, { child: Child; port: number }>> = {};
  for (const name of extraProcesses(options.only)) {
    const port = await freePort();
    const file = path.join(logDir, `${name}.yaml`);
    writeFileSync(file, configYaml(options, port, origin.port, sink?.port, EXTRA_CONFIG[name]));
    extras[name] = { child: startGatehouse(options, path.relative(options.repoRoot, file), port, logDir, name), port };
  }
  await Promise.all([
    waitForReadiness(baseline, baselinePort),
    waitForReadiness(gatehouse, gatehousePort),
    ...Object.values(extras).map((e) => waitForReadiness(e.child, e.port)),
  ]);
  console.log(`origin :${origin.port}  baseline :${baselinePort}  gatehouse :${gatehousePort} (pid ${gatehouse.pid})` +
    (sink === undefined ? "" : `  sink :${sink.port}  tunnel-baseline :${tunnelBaseline?.port}`) +
    Object.entries(extras).map(([name, e]) => `  ${name} :${e.port}`).join(""));

  const targets: ProxyTarget[] = [
    { name: "baseline", http: { child: baseline, port: baselinePort }, tunnel: tunnelBaseline },
    { name: "gatehouse", http: { child: gatehouse, port: gatehousePort }, tunnel: { child: gatehouse, port: gatehousePort } },
  ];
  const env: Env = {
    options,
    originPort: origin.port,
    sinkPort: sink?.port,
    scripts: writeWrkScripts(logDir, origin.port),
    logDir,
    processes: { baseline: { child: baseline, port: baselinePort }, gatehouse: { child: gatehouse, port: gatehousePort }, ...extras },
  };

  for (const workload of buildWorkloads(options)) {
    if (shutdownPromise !== undefined) return; // watchdog or signal
    await runWorkload(env, workload, targets);
    if (shutdownPromise !== undefined) return;
    reports.push(reportWorkload(workload));
  }
  await stopAll();
};

// ---- lifecycle: bounded time, clean shutdown on every path ---------------

let shutdownPromise: Promise<never> | undefined;
/** The first caller's exit code wins; later callers wait for the same shutdown. */
const shutdown = (code: number, message?: string): Promise<never> => {
  shutdownPromise ??= (async () => {
    if (message !== undefined) console.error(message);
    await stopAll();
    process.exit(code);
  })();
  return shutdownPromise;
};

process.on("exit", killAllSync);
process.on("SIGINT", () => void shutdown(130, "interrupted"));
process.on("SIGTERM", () => void shutdown(143, "terminated"));

try {
  const options = readOptions(process.argv.slice(2));
  const budgetS = options.timeoutS ?? 2 * estimateSeconds(options) + 60;
  const watchdog = setTimeout(() => void shutdown(1, `bench: timed out after ${budgetS.toFixed(0)} s (BENCH_TIMEOUT)`), budgetS * 1000);
  const code = await main(options);
  clearTimeout(watchdog);
  await shutdown(code);
} catch (error) {
  const detail = error instanceof UsageError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
  await shutdown(1, `bench failed: ${detail}`);
}
