// Workload definitions and one measured round per (workload, proxy).
import type { Child } from "./procs.ts";
import { httpGet } from "./procs.ts";
import type { HttpRound, HttpWorkload, ProcessName, ProxyName, TunnelRound, TunnelWorkload, Variant, Workload } from "./report.ts";
import { PROXIES } from "./report.ts";
import type { Options, WorkloadName } from "./options.ts";
import { measureCpu } from "./cpu.ts";
import type { CpuUsage } from "./cpu.ts";
import { sampleRss } from "./rss.ts";
import { runTunnel } from "./tunnel.ts";
import { runWrk, writePathScript } from "./wrk.ts";

export interface ProxyTarget {
  readonly name: ProxyName;
  /** HTTP proxy process + port (reverse/forward workloads). */
  readonly http: { readonly child: Child; readonly port: number };
  /** CONNECT endpoint (the raw net baseline for "baseline", Gatehouse itself otherwise). */
  readonly tunnel: { readonly child: Child; readonly port: number } | undefined;
}

export interface Env {
  readonly options: Options;
  readonly originPort: number;
  readonly sinkPort: number | undefined;
  readonly scripts: { readonly reverse: string; readonly forward: string };
  readonly logDir: string;
  /** HTTP endpoints of every process started for the selected workloads (variants pick from these). */
  readonly processes: Partial<Record<ProcessName, { readonly child: Child; readonly port: number }>>;
}

/** Gatehouse processes a workload list needs besides baseline and the default Gatehouse. */
export const extraProcesses = (only: readonly WorkloadName[]): Array<Exclude<ProcessName, "baseline" | "gatehouse">> => [
  ...(only.includes("cachehit") ? ["gatehouse-cache" as const] : []),
  ...(only.includes("tracingoff") ? ["gatehouse-tracing" as const] : []),
];

const emptyRuns = <R>(): Record<ProxyName, { rounds: R[]; error: string | null }> => ({
  baseline: { rounds: [], error: null },
  gatehouse: { rounds: [], error: null },
});

const http = (name: WorkloadName, mode: "reverse" | "forward", connections: number, description: string): HttpWorkload => ({
  kind: "http", name, mode, connections, description, runs: emptyRuns<HttpRound>(),
});

export const buildWorkloads = (options: Options): Workload[] => {
  // (samecore is not a wrk workload: bench/lib/samecore.ts)
  const all: Record<Exclude<WorkloadName, "samecore">, () => Workload> = {
    reverse64: () => http("reverse64", "reverse", 64, "reverse proxy (origin-form GET /), 64 keep-alive connections"),
    reverse1000: () => http("reverse1000", "reverse", 1000, "reverse proxy (origin-form GET /), 1000 keep-alive connections"),
    forward64: () => http("forward64", "forward", 64, "forward proxy (absolute-form GET http://origin/), 64 keep-alive connections"),
    // One Gatehouse with the memory cache on: "/" has no freshness (never stored, forwarded every
    // time: the uncached path, cache lookup included), "/cacheable" is max-age=3600 (a hit after
    // the preflight request). Same process, same config, same body; only hit vs forward differs.
    cachehit: (): HttpWorkload => ({
      ...http("cachehit", "reverse", 64, "cache on: hits on /cacheable vs the forwarded (uncacheable) / in the same Gatehouse, 64 connections"),
      variants: {
        baseline: { process: "gatehouse-cache", path: "/", label: "gatehouse uncached" },
        gatehouse: { process: "gatehouse-cache", path: "/cacheable", label: "gatehouse cache hit" },
      },
      rpsRatioMin: 2,
    }),
    // The default Gatehouse (tracing.enabled: false: no tracer, no spans) vs one with tracing on and
    // sample_ratio 0 (spans made but never recorded or exported). See bench/README.md.
    tracingoff: (): HttpWorkload => ({
      ...http("tracingoff", "reverse", 64, "tracing on with sample_ratio 0 vs tracing off (the default), reverse proxy, 64 connections"),
      variants: {
        baseline: { process: "gatehouse", path: "/", label: "tracing off" },
        gatehouse: { process: "gatehouse-tracing", path: "/", label: "tracing on, ratio 0" },
      },
    }),
    tunnel: (): TunnelWorkload => ({
      kind: "tunnel",
      name: "tunnel",
      description: "CONNECT tunnel to a TCP sink/source, bulk upload then download through one tunnel each",
      bytes: options.tunnelBytes,
      runs: emptyRuns<TunnelRound>(),
    }),
  };
  return options.only.filter((name) => name !== "samecore").map((name) => all[name]());
};

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const ensureAlive = (child: Child): void => {
  if (child.exitStatus !== undefined) throw new Error(`${child.name} is not running (${child.exitStatus})`);
};

/** One request through the proxy before measuring: must be 200 with the origin's 1 KiB body. */
const preflight = async (workload: HttpWorkload, port: number, originPort: number, variant: Variant | undefined): Promise<void> => {
  const requestPath = variant?.path ?? (workload.mode === "reverse" ? "/" : `http://127.0.0.1:${originPort}/`);
  const reply = await httpGet(port, requestPath, 5000);
  if (reply.status !== 200 || reply.body.length !== 1024) {
    throw new Error(`preflight GET ${requestPath}: status ${reply.status}, ${reply.body.length} body bytes (want 200, 1024)`);
  }
};

const seconds = (s: number): number => Math.max(1, Math.round(s));

const runHttpRound = async (env: Env, workload: HttpWorkload, target: ProxyTarget, round: number): Promise<HttpRound> => {
  const { child, port } = target.http;
  ensureAlive(child);
  const variant = workload.variants?.[target.name];
  if (round === 1) await preflight(workload, port, env.originPort, variant);
  const script = variant !== undefined && variant.path !== "/"
    ? writePathScript(env.logDir, `${workload.name}-${target.name}`, variant.path)
    : workload.mode === "reverse" ? env.scripts.reverse : env.scripts.forward;
  const base = {
    port,
    connections: workload.connections,
    threads: env.options.threads,
    script,
    logDir: env.logDir,
    cwd: env.options.repoRoot,
  };
  if (env.options.warmupS > 0) await runWrk({ ...base, durationS: seconds(env.options.warmupS) });
  ensureAlive(child);
  const rss = sampleRss(child.pid);
  const cpu = measureCpu();
  try {
    const wrk = await runWrk({ ...base, durationS: seconds(env.options.durationS) });
    ensureAlive(child);
    return { round, wrk, peakRssMiB: rss.stop(), cpu: cpu.stop() };
  } finally {
    rss.stop();
  }
};

const runTunnelRound = async (env: Env, workload: TunnelWorkload, target: ProxyTarget, round: number): Promise<TunnelRound> => {
  if (target.tunnel === undefined || env.sinkPort === undefined) throw new Error("no tunnel endpoint");
  const { child, port } = target.tunnel;
  ensureAlive(child);
  const base = {
    proxyPort: port,
    targetPort: env.sinkPort,
    // generous: 10 MB/s minimum plus 30 s
    timeoutMs: 30_000 + Math.ceil(workload.bytes / 10e6) * 1000,
    cwd: env.options.repoRoot,
    logDir: env.logDir,
  };
  if (env.options.warmupS > 0) {
    await runTunnel({ ...base, bytes: Math.min(workload.bytes, 64 * 1024 * 1024), direction: "up" });
  }
  const rss = sampleRss(child.pid);
  const cpu = measureCpu();
  try {
    const up = await runTunnel({ ...base, bytes: workload.bytes, direction: "up" });
    const down = await runTunnel({ ...base, bytes: workload.bytes, direction: "down" });
    ensureAlive(child);
    return { round, up, down, peakRssMiB: rss.stop(), cpu: cpu.stop() };
  } finally {
    rss.stop();
  }
};

const cpuNote = (cpu: CpuUsage): string =>
  `  other CPU ${cpu.otherPct.toFixed(0)}%${cpu.stealPct >= 1 ? `  steal ${cpu.stealPct.toFixed(0)}%` : ""}`;

const progress = (workload: Workload, proxy: ProxyName, round: number, rounds: number, text: string): void => {
  console.log(`[${workload.name} ${round}/${rounds}] ${proxy.padEnd(9)} ${text}`);
};

/** Runs all rounds of one workload, alternating baseline and Gatehouse. */
export const runWorkload = async (env: Env, workload: Workload, defaultTargets: readonly ProxyTarget[]): Promise<void> => {
  const rounds = env.options.rounds;
  const variants = workload.kind === "http" ? workload.variants : undefined;
  const targets: readonly ProxyTarget[] = variants === undefined ? defaultTargets : PROXIES.flatMap((slot) => {
    const http = env.processes[variants[slot].process];
    if (http === undefined) {
      workload.runs[slot].error = `process ${variants[slot].process} was not started`;
      return [];
    }
    return [{ name: slot, http, tunnel: undefined }];
  });
  for (let round = 1; round <= rounds; round++) {
    for (const target of targets) {
      const runs = workload.runs[target.name];
      if (runs.error !== null) continue; // failed earlier: skip its remaining rounds
      try {
        if (workload.kind === "http") {
          const r = await runHttpRound(env, workload, target, round);
          workload.runs[target.name].rounds.push(r);
          const { rps, latencyMs: l, errors } = r.wrk;
          progress(workload, target.name, round, rounds,
            `${rps.toFixed(0)} req/s  p50 ${l.p50.toFixed(2)}  p95 ${l.p95.toFixed(2)}  p99 ${l.p99.toFixed(2)} ms  errors ${errors.total}  RSS ${r.peakRssMiB.toFixed(1)} MiB${cpuNote(r.cpu)}`);
        } else {
          const r = await runTunnelRound(env, workload, target, round);
          workload.runs[target.name].rounds.push(r);
          progress(workload, target.name, round, rounds,
            `up ${r.up.mbps.toFixed(0)} MB/s  down ${r.down.mbps.toFixed(0)} MB/s  RSS ${r.peakRssMiB.toFixed(1)} MiB${cpuNote(r.cpu)}`);
        }
      } catch (error) {
        runs.error = errorText(error);
        progress(workload, target.name, round, rounds, `FAILED: ${runs.error}`);
      }
    }
  }
};
