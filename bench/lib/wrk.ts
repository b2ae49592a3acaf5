// wrk runner: writes a Lua script whose done() prints the summary as JSON.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { spawnChild, stderrTail, stopChild } from "./procs.ts";

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number; readonly mean: number; readonly max: number };
  readonly errors: {
    readonly connect: number;
    readonly read: number;
    readonly write: number;
    readonly timeout: number;
    /** responses with status >= 400 (wrk's definition) */
    readonly status: number;
    readonly total: number;
  };
}

const DONE_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%.1f,"p95":%.1f,"p99":%.1f,"mean":%.1f,"max":%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean, latency.max))
end
`;

/**
 * Forward-proxy script: absolute-form request line with the Host of the origin.
 * Setting wrk.path (instead of defining request()) keeps wrk's static-request fast
 * path: wrk.format() runs once in wrk.init and every request reuses those bytes.
 */
const forwardLua = (absoluteUrl: string): string => {
  const url = new URL(absoluteUrl);
  return `wrk.path = "${absoluteUrl}"\nwrk.headers["Host"] = "${url.host}"\n${DONE_LUA}`;
};

/** Origin-form script for another path than "/" (static request: wrk.path set once). */
export const writePathScript = (dir: string, name: string, requestPath: string): string => {
  const file = path.join(dir, `${name}.lua`);
  writeFileSync(file, `wrk.path = "${requestPath}"\n${DONE_LUA}`);
  return file;
};

export const writeWrkScripts = (dir: string, originPort: number): { reverse: string; forward: string } => {
  const reverse = path.join(dir, "reverse.lua");
  const forward = path.join(dir, "forward.lua");
  writeFileSync(reverse, DONE_LUA);
  writeFileSync(forward, forwardLua(`http://127.0.0.1:${originPort}/`));
  return { reverse, forward };
};

export const hasWrk = (): boolean => {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" });
    return true;
  } catch (error) {
    // wrk --version exits 1 but prints its banner; ENOENT means missing
    return (error as NodeJS.ErrnoException).code !== "ENOENT";
  }
};

/** Installs the Debian wrk package if missing. */
export const ensureWrk = (): void => {
  if (hasWrk()) return;
  console.log("wrk not found: apt-get install -y wrk");
  const install = (): void => {
    execFileSync("apt-get", ["install", "-y", "wrk"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  };
  try {
    install();
  } catch {
    execFileSync("apt-get", ["update"], { stdio: "inherit" });
    install();
  }
  if (!hasWrk()) throw new Error("wrk is still missing after apt-get install");
};

export interface WrkRun {
  readonly port: number;
  readonly connections: number;
  readonly threads: number;
  readonly durationS: number;
  readonly script: string;
  readonly logDir: string;
  readonly cwd: string;
  /** Pin wrk to this CPU (`taskset -c`); unpinned when absent. */
  readonly cpu?: number;
}

export const runWrk = async (run: WrkRun): Promise<WrkResult> => {
  const args = [
    "-t", String(Math.min(run.threads, run.connections)),
    "-c", String(run.connections),
    "-d", `${run.durationS}s`,
    "--timeout", "5s",
    "-s", run.script,
    `http://127.0.0.1:${run.port}/`,
  ];
  const child = spawnChild("wrk", ["wrk", ...args], {
    stdout: "pipe", stdin: "ignore", cwd: run.cwd, logDir: run.logDir, graceMs: 1000,
    ...(run.cpu === undefined ? {} : { shellCommand: `taskset -c ${run.cpu}` }),
  });
  let output = "";
  child.proc.stdout?.setEncoding("utf8");
  child.proc.stdout?.on("data", (chunk: string) => (output += chunk));
  // "exit" can come before the last stdout chunk is read: the summary is complete once stdout closes
  const stdoutClosed = new Promise<void>((resolve) => {
    if (child.proc.stdout === null) resolve();
    else child.proc.stdout.once("close", () => resolve());
  });
  const limit = setTimeout(() => void stopChild(child), (run.durationS + 30) * 1000);
  await child.exited;
  await stdoutClosed;
  clearTimeout(limit);
  await stopChild(child);
  const line = output.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (line === undefined) throw new Error([`wrk produced no summary (${child.exitStatus})`, output.trim(), stderrTail(child)].filter((x) => x !== "").join("\n"));
  const r = JSON.parse(line.slice("BENCH_JSON ".length)) as Record<string, number>;
  const num = (key: string): number => r[key] ?? 0;
  const seconds = num("duration_us") / 1e6;
  const errors = { connect: num("connect"), read: num("read"), write: num("write"), timeout: num("timeout"), status: num("status") };
  return {
    requests: num("requests"),
    seconds,
    rps: seconds > 0 ? num("requests") / seconds : 0,
    latencyMs: { p50: num("p50") / 1000, p95: num("p95") / 1000, p99: num("p99") / 1000, mean: num("mean") / 1000, max: num("max") / 1000 },
    errors: { ...errors, total: errors.connect + errors.read + errors.write + errors.timeout + errors.status },
  };
};
