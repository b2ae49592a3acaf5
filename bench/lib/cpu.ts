// How much CPU did processes outside the bench use during a run? On a shared
// 2-core machine that is the main source of noise, so every run reports it.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { livePids } from "./procs.ts";

export const clockTicks = ((): number => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * Process-attributable busy ticks (user + nice + system) and steal, summed over all
 * CPUs. irq/softirq are left out: loopback TCP work lands there, not on any process.
 */
const systemTicks = (): { busy: number; steal: number } => {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const [user = 0, nice = 0, system = 0, , , , , steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return { busy: user + nice + system, steal };
};

/** utime + stime + cutime + cstime of one process (reaped children fold into c*time). */
export const processTicks = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  } catch {
    return 0;
  }
};

const benchTicks = (): Map<number, number> => {
  const ticks = new Map<number, number>([[process.pid, processTicks(process.pid)]]);
  for (const pid of livePids()) ticks.set(pid, processTicks(pid));
  return ticks;
};

export interface CpuUsage {
  /** CPU used by processes that are not part of the bench, in % of one core. */
  readonly otherPct: number;
  /** Hypervisor steal, in % of one core. */
  readonly stealPct: number;
}

export const measureCpu = (): { readonly stop: () => CpuUsage } => {
  const started = process.hrtime.bigint();
  const system = systemTicks();
  const ours = benchTicks();
  return {
    stop: () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const nowSystem = systemTicks();
      // A child reaped during the window reads as 0 here; its full time shows up
      // in our own cutime/cstime instead, so a plain per-pid difference is right.
      const now = benchTicks();
      let oursDelta = 0;
      for (const pid of new Set([...ours.keys(), ...now.keys()])) oursDelta += (now.get(pid) ?? 0) - (ours.get(pid) ?? 0);
      const pct = (ticks: number): number => Math.max(0, (ticks / clockTicks / seconds) * 100);
      return { otherPct: pct(nowSystem.busy - system.busy - oursDelta), stealPct: pct(nowSystem.steal - system.steal) };
    },
  };
};
