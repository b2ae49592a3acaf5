// Child-process bookkeeping: spawn (own process group, raised fd limit),
// wait for readiness, and stop everything (SIGTERM, then SIGKILL after a grace period).
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly stderrFile: string;
  readonly exited: Promise<void>;
  readonly graceMs: number;
  exitStatus: string | undefined;
}

const live = new Set<Child>();
let spawned = 0;
let closed = false;

// Raise the soft fd limit as far as allowed (1000-connection runs need it), then exec.
const ULIMIT = `ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null`;

export interface SpawnOptions {
  /** Shell command string prefixed to argv (e.g. from GATEHOUSE_CMD). */
  readonly shellCommand?: string;
  readonly stdout: "pipe" | "ignore";
  readonly stdin?: "pipe" | "ignore";
  readonly cwd: string;
  readonly logDir: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly graceMs?: number;
}

export const spawnChild = (name: string, argv: readonly string[], options: SpawnOptions): Child => {
  if (closed) throw new Error(`shutting down: not starting ${name}`);
  const stderrFile = path.join(options.logDir, `${name}.${++spawned}.stderr.log`);
  const stderrFd = openSync(stderrFile, "w");
  const script = `${ULIMIT}; exec ${options.shellCommand ?? ""} "$@"`;
  const proc = spawn("bash", ["-c", script, name, ...argv], {
    cwd: options.cwd,
    detached: true, // own process group: we can signal the whole tree
    stdio: [options.stdin ?? "pipe", options.stdout, stderrFd],
    env: {
      ...process.env,
      // make a bare `node` resolve to the Node running the bench
      PATH: `${path.dirname(process.execPath)}:${process.env["PATH"] ?? ""}`,
      ...options.env,
    },
  });
  closeSync(stderrFd);
  if (proc.pid === undefined) throw new Error(`failed to spawn ${name}`);
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    stderrFile,
    graceMs: options.graceMs ?? 3000,
    exitStatus: undefined,
    exited: new Promise((resolve) => {
      proc.once("exit", (code, signal) => {
        child.exitStatus = signal === null ? `exit code ${code}` : `signal ${signal}`;
        resolve();
      });
    }),
  };
  proc.once("error", (err) => {
    child.exitStatus = `spawn error: ${err.message}`;
  });
  live.add(child);
  return child;
};

export const stderrTail = (child: Child, chars = 2000): string => {
  try {
    return readFileSync(child.stderrFile, "utf8").slice(-chars).trim();
  } catch {
    return "";
  }
};

const groupAlive = (pid: number): boolean => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

const signalGroup = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
};

export const stopChild = async (child: Child): Promise<void> => {
  live.delete(child);
  child.proc.stdin?.destroy();
  signalGroup(child.pid, "SIGTERM");
  const deadline = Date.now() + child.graceMs;
  while (Date.now() < deadline && (child.exitStatus === undefined || groupAlive(child.pid))) await sleep(50);
  if (child.exitStatus === undefined || groupAlive(child.pid)) signalGroup(child.pid, "SIGKILL");
  await Promise.race([child.exited, sleep(1000)]);
};

export const livePids = (): number[] => [...live].map((c) => c.pid);

/** Stops every child and refuses to start new ones. */
export const stopAll = async (): Promise<void> => {
  closed = true;
  await Promise.all([...live].map(stopChild));
};

/** Last resort on process exit: synchronous SIGKILL of every remaining group. */
export const killAllSync = (): void => {
  for (const child of live) signalGroup(child.pid, "SIGKILL");
  live.clear();
};

/** Reads the first stdout line of a bench helper child: {"port":N}. */
export const waitForAnnouncedPort = (child: Child, timeoutMs = 15_000): Promise<number> =>
  new Promise((resolve, reject) => {
    const stdout = child.proc.stdout;
    if (stdout === null) {
      reject(new Error(`${child.name}: stdout is not piped`));
      return;
    }
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`${child.name}: no port announced within ${timeoutMs} ms`)), timeoutMs);
    stdout.setEncoding("utf8");
    stdout.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl === -1) return;
      clearTimeout(timer);
      const parsed = JSON.parse(buf.slice(0, nl)) as { port?: unknown };
      if (typeof parsed.port === "number") resolve(parsed.port);
      else reject(new Error(`${child.name}: bad announcement ${buf.slice(0, nl)}`));
    });
    void child.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${child.name} exited (${child.exitStatus}) before announcing its port\n${stderrTail(child)}`));
    });
  });

export interface HttpReply {
  readonly status: number;
  readonly body: Buffer;
}

/** One GET through 127.0.0.1:port with a fresh connection. `path` may be absolute-form. */
export const httpGet = (port: number, requestPath: string, timeoutMs = 2000): Promise<HttpReply> =>
  new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: requestPath, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${requestPath} timed out`)));
    req.on("error", reject);
  });

/** Polls GET /health/readiness until it answers 200. */
export const waitForReadiness = async (child: Child, port: number, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child.exitStatus !== undefined) {
      throw new Error(`${child.name} exited (${child.exitStatus}) before becoming ready\n${stderrTail(child)}`);
    }
    try {
      const reply = await httpGet(port, "/health/readiness", 1000);
      if (reply.status === 200) return;
      last = `status ${reply.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(100);
  }
  throw new Error(`${child.name} not ready on port ${port} after ${timeoutMs} ms (${last})\n${stderrTail(child)}`);
};

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
