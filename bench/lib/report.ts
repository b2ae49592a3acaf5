// Aggregation over rounds, target checks, the stdout table and the JSON file.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { CpuUsage } from "./cpu.ts";
import type { TunnelTransfer } from "./tunnel.ts";
import type { WrkResult } from "./wrk.ts";

export const PROXIES = ["baseline", "gatehouse"] as const;
export type ProxyName = (typeof PROXIES)[number];

export interface HttpRound {
  readonly round: number;
  readonly wrk: WrkResult;
  readonly peakRssMiB: number;
  readonly cpu: CpuUsage;
}
export interface TunnelRound {
  readonly round: number;
  readonly up: TunnelTransfer;
  readonly down: TunnelTransfer;
  readonly peakRssMiB: number;
  readonly cpu: CpuUsage;
}
export interface ProxyRuns<R> {
  readonly rounds: R[];
  error: string | null;
}
/** Processes the harness can start: the baseline proxy and Gatehouse in several configurations. */
export type ProcessName = "baseline" | "gatehouse" | "gatehouse-cache" | "gatehouse-tracing";

/**
 * What fills a comparison slot when a workload compares two Gatehouse setups instead of
 * baseline vs Gatehouse: which process, which origin-form path, and the label in the table.
 */
export interface Variant {
  readonly process: ProcessName;
  readonly path: string;
  readonly label: string;
}

export interface HttpWorkload {
  readonly kind: "http";
  readonly name: string;
  readonly description: string;
  readonly mode: "reverse" | "forward";
  readonly connections: number;
  /** Comparison of two Gatehouse setups: slot "baseline" is the reference, "gatehouse" the one judged. */
  readonly variants?: Record<ProxyName, Variant>;
  /** rps ratio target for this workload (default TARGETS.rpsRatioMin). */
  readonly rpsRatioMin?: number;
  readonly runs: Record<ProxyName, ProxyRuns<HttpRound>>;
}
export interface TunnelWorkload {
  readonly kind: "tunnel";
  readonly name: string;
  readonly description: string;
  readonly bytes: number;
  readonly runs: Record<ProxyName, ProxyRuns<TunnelRound>>;
}
export type Workload = HttpWorkload | TunnelWorkload;

export interface HttpSummary {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly peakRssMiB: number;
  /** worst round: CPU used outside the bench, % of one core */
  readonly otherCpuPct: number;
}
export interface TunnelSummary {
  readonly upMBps: number;
  readonly downMBps: number;
  readonly peakRssMiB: number;
  readonly otherCpuPct: number;
}
export interface Check {
  readonly workload: string;
  readonly metric: string;
  readonly value: number | null;
  readonly target: string;
  readonly pass: boolean;
}

/** Above this much foreign CPU (% of one core) in a round, a comparison is flagged as noisy. */
export const NOISY_CPU_PCT = 20;

export const TARGETS = { rpsRatioMin: 0.85, p99RatioMax: 1.5, tunnelRatioMin: 0.9, rssMiBMax1000: 150 } as const;

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/** Median over rounds for rates/latencies, sum for errors, max for RSS. */
export const summarizeHttp = (rounds: readonly HttpRound[]): HttpSummary | null =>
  rounds.length === 0
    ? null
    : {
        rps: median(rounds.map((r) => r.wrk.rps)),
        p50Ms: median(rounds.map((r) => r.wrk.latencyMs.p50)),
        p95Ms: median(rounds.map((r) => r.wrk.latencyMs.p95)),
        p99Ms: median(rounds.map((r) => r.wrk.latencyMs.p99)),
        errors: rounds.reduce((n, r) => n + r.wrk.errors.total, 0),
        peakRssMiB: Math.max(...rounds.map((r) => r.peakRssMiB)),
        otherCpuPct: Math.max(...rounds.map((r) => r.cpu.otherPct)),
      };

export const summarizeTunnel = (rounds: readonly TunnelRound[]): TunnelSummary | null =>
  rounds.length === 0
    ? null
    : {
        upMBps: median(rounds.map((r) => r.up.mbps)),
        downMBps: median(rounds.map((r) => r.down.mbps)),
        peakRssMiB: Math.max(...rounds.map((r) => r.peakRssMiB)),
        otherCpuPct: Math.max(...rounds.map((r) => r.cpu.otherPct)),
      };

const ratio = (gatehouse: number | undefined, baseline: number | undefined): number | null =>
  gatehouse === undefined || baseline === undefined || baseline === 0 ? null : gatehouse / baseline;

export interface WorkloadReport {
  readonly workload: Workload;
  readonly summary: Record<ProxyName, HttpSummary | TunnelSummary | null>;
  readonly ratios: Record<string, number | null>;
  readonly checks: Check[];
}

const atLeast = (workload: string, metric: string, value: number | null, min: number): Check => ({
  workload, metric, value, target: `>= ${min.toFixed(2)}x`, pass: value !== null && value >= min,
});
const atMost = (workload: string, metric: string, value: number | null, max: number, unit = "x"): Check => ({
  workload, metric, value, target: `<= ${max.toFixed(2)}${unit}`, pass: value !== null && value <= max,
});

export const reportWorkload = (workload: Workload): WorkloadReport => {
  if (workload.kind === "http") {
    const b = summarizeHttp(workload.runs.baseline.rounds);
    const g = summarizeHttp(workload.runs.gatehouse.rounds);
    const ratios = { rps: ratio(g?.rps, b?.rps), p99: ratio(g?.p99Ms, b?.p99Ms) };
    const vs = workload.variants === undefined ? "" : ` (${workload.variants.gatehouse.label} / ${workload.variants.baseline.label})`;
    const checks = [
      atLeast(workload.name, `rps ratio${vs}`, ratios.rps, workload.rpsRatioMin ?? TARGETS.rpsRatioMin),
      atMost(workload.name, `p99 ratio${vs}`, ratios.p99, TARGETS.p99RatioMax),
    ];
    if (workload.connections >= 1000) {
      checks.push({
        workload: workload.name,
        metric: "gatehouse RSS MiB",
        value: g?.peakRssMiB ?? null,
        target: `< ${TARGETS.rssMiBMax1000} MiB`,
        pass: g !== null && g.peakRssMiB < TARGETS.rssMiBMax1000,
      });
    }
    return { workload, summary: { baseline: b, gatehouse: g }, ratios, checks };
  }
  const b = summarizeTunnel(workload.runs.baseline.rounds);
  const g = summarizeTunnel(workload.runs.gatehouse.rounds);
  const ratios = { up: ratio(g?.upMBps, b?.upMBps), down: ratio(g?.downMBps, b?.downMBps) };
  const checks = [
    atLeast(workload.name, "upload MB/s ratio", ratios.up, TARGETS.tunnelRatioMin),
    atLeast(workload.name, "download MB/s ratio", ratios.down, TARGETS.tunnelRatioMin),
  ];
  return { workload, summary: { baseline: b, gatehouse: g }, ratios, checks };
};

// ---- text output ---------------------------------------------------------

const fmt = (value: number | null | undefined, digits = 1): string =>
  value === null || value === undefined || Number.isNaN(value) ? "-" : value.toFixed(digits);
const fmtRatio = (value: number | null | undefined): string => (value === null || value === undefined ? "-" : `${value.toFixed(2)}x`);

const table = (rows: readonly (readonly string[])[]): string => {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ").trimEnd())
    .join("\n");
};

const failure = (workload: Workload, proxy: ProxyName): string | null => workload.runs[proxy].error;

export const formatReport = (reports: readonly WorkloadReport[]): string => {
  const out: string[] = [];
  const http = reports.filter((r) => r.workload.kind === "http");
  if (http.length > 0) {
    const rows: string[][] = [["workload", "proxy", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "peak RSS MiB", "other CPU %"]];
    for (const r of http) {
      const variants = r.workload.kind === "http" ? r.workload.variants : undefined;
      const label = (proxy: ProxyName): string => variants?.[proxy].label ?? proxy;
      for (const proxy of PROXIES) {
        const s = r.summary[proxy] as HttpSummary | null;
        const err = failure(r.workload, proxy);
        rows.push([proxy === "baseline" ? r.workload.name : "", label(proxy), fmt(s?.rps, 0), fmt(s?.p50Ms, 2), fmt(s?.p95Ms, 2), fmt(s?.p99Ms, 2),
          s === null ? (err === null ? "-" : "FAILED") : String(s.errors), fmt(s?.peakRssMiB), fmt(s?.otherCpuPct, 0)]);
      }
      rows.push(["", `${label("gatehouse")}/${label("baseline")}`, fmtRatio(r.ratios["rps"]), "", "", fmtRatio(r.ratios["p99"]), "", "", ""]);
    }
    out.push(table(rows));
  }
  const tunnels = reports.filter((r) => r.workload.kind === "tunnel");
  if (tunnels.length > 0) {
    const rows: string[][] = [["workload", "proxy", "upload MB/s", "download MB/s", "peak RSS MiB", "other CPU %"]];
    for (const r of tunnels) {
      for (const proxy of PROXIES) {
        const s = r.summary[proxy] as TunnelSummary | null;
        rows.push([proxy === "baseline" ? r.workload.name : "", proxy, fmt(s?.upMBps, 0), fmt(s?.downMBps, 0), fmt(s?.peakRssMiB), fmt(s?.otherCpuPct, 0)]);
      }
      rows.push(["", "gatehouse/baseline", fmtRatio(r.ratios["up"]), fmtRatio(r.ratios["down"]), "", ""]);
    }
    out.push(table(rows));
  }
  const checkRows: string[][] = [["workload", "metric", "value", "target", "result"]];
  for (const c of reports.flatMap((r) => r.checks)) {
    const value = c.metric.includes("MiB") ? `${fmt(c.value)} MiB` : fmtRatio(c.value);
    checkRows.push([c.workload, c.metric, value, c.target, c.pass ? "PASS" : "FAIL"]);
  }
  out.push(`Targets (gatehouse vs baseline, or the two setups named)\n${table(checkRows)}`);
  const noisy = reports.filter((r) => PROXIES.some((p) => (r.summary[p]?.otherCpuPct ?? 0) > NOISY_CPU_PCT));
  if (noisy.length > 0) {
    out.push(`Warning: other processes used > ${NOISY_CPU_PCT}% of a core during ${noisy.map((r) => r.workload.name).join(", ")}; ` +
      "those ratios are unreliable (other CPU % = worst round, % of one core).");
  }
  const failures = reports.flatMap((r) =>
    PROXIES.flatMap((p) => (r.workload.runs[p].error === null ? [] : [`${r.workload.name}/${p}: ${r.workload.runs[p].error}`])),
  );
  if (failures.length > 0) out.push(`Failures\n${failures.map((f) => `  ${f}`).join("\n")}`);
  return out.join("\n\n");
};

/** JSON shape of one workload in latest.json: summary first, raw rounds last. */
export const toJson = (report: WorkloadReport): Record<string, unknown> => {
  const { runs, ...definition } = report.workload;
  return { ...definition, summary: report.summary, ratios: report.ratios, checks: report.checks, runs };
};

export const writeResults = (dir: string, document: unknown): string => {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "latest.json");
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  return file;
};
