// Runs bench/tunnel-client.ts against a proxy and returns MB/s.
import path from "node:path";
import { spawnChild, stderrTail, stopChild } from "./procs.ts";

export interface TunnelTransfer {
  readonly direction: "up" | "down";
  readonly bytes: number;
  readonly seconds: number;
  /** 10^6 bytes per second */
  readonly mbps: number;
}

export interface TunnelRun {
  readonly proxyPort: number;
  readonly targetPort: number;
  readonly bytes: number;
  readonly direction: "up" | "down";
  readonly timeoutMs: number;
  readonly cwd: string;
  readonly logDir: string;
}

export const runTunnel = async (run: TunnelRun): Promise<TunnelTransfer> => {
  // the compiled client (bench/run.ts builds dist/ first), like every process of the run
  const script = path.join(run.cwd, "dist", "bench", "tunnel-client.js");
  const args = [
    process.execPath, script,
    "--proxy-port", String(run.proxyPort),
    "--target-port", String(run.targetPort),
    "--bytes", String(run.bytes),
    "--direction", run.direction,
    "--timeout-ms", String(run.timeoutMs),
  ];
  const child = spawnChild("tunnel-client", args, { stdout: "pipe", stdin: "ignore", cwd: run.cwd, logDir: run.logDir, graceMs: 1000 });
  let output = "";
  child.proc.stdout?.setEncoding("utf8");
  child.proc.stdout?.on("data", (chunk: string) => (output += chunk));
  const limit = setTimeout(() => void stopChild(child), run.timeoutMs + 5000);
  await child.exited;
  clearTimeout(limit);
  await stopChild(child);
  const line = output.trim().split("\n").pop() ?? "";
  let parsed: { ok?: boolean; error?: string; seconds?: number; mbps?: number };
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    throw new Error([`tunnel client failed (${child.exitStatus})`, output.trim(), stderrTail(child)].filter((x) => x !== "").join("\n"));
  }
  if (parsed.ok !== true || parsed.seconds === undefined || parsed.mbps === undefined) {
    throw new Error(`tunnel ${run.direction}: ${parsed.error ?? "unknown error"}`);
  }
  return { direction: run.direction, bytes: run.bytes, seconds: parsed.seconds, mbps: parsed.mbps };
};
