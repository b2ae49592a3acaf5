// Peak-RSS sampling of a proxy process tree via /proc.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

const readStatusKb = (pid: number, field: "VmRSS" | "VmHWM"): number | undefined => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match?.[1] === undefined ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
};

/** pid plus all its descendants (e.g. a wrapper shell or npm and the real node process). */
const processTree = (root: number): number[] => {
  const parentOf = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ppid = Number(fields[1]);
      const siblings = parentOf.get(ppid) ?? [];
      siblings.push(Number(entry));
      parentOf.set(ppid, siblings);
    } catch {
      // process vanished
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(parentOf.get(tree[i] ?? -1) ?? []));
  return tree;
};

export interface RssSampler {
  /** Stops sampling; returns the peak RSS (MiB) of the largest single process in the tree. */
  readonly stop: () => number;
}

/**
 * Samples VmRSS every `intervalMs`. Also resets VmHWM (write "5" to clear_refs) at
 * start and reads it at stop, so short spikes between samples are caught too.
 */
export const sampleRss = (rootPid: number, intervalMs = 200): RssSampler => {
  const pids = processTree(rootPid);
  const hwmReset = new Set<number>();
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
      hwmReset.add(pid);
    } catch {
      // not permitted: rely on sampling only
    }
  }
  let peakKb = 0;
  const sample = (): void => {
    for (const pid of pids) peakKb = Math.max(peakKb, readStatusKb(pid, "VmRSS") ?? 0);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      for (const pid of hwmReset) peakKb = Math.max(peakKb, readStatusKb(pid, "VmHWM") ?? 0);
      return peakKb / 1024;
    },
  };
};
