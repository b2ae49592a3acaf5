// Helpers shared by the bench's own child processes (origin, sink, baselines).

/** Exit when the parent goes away: the parent holds our stdin pipe open. */
export const exitWithParent = (): void => {
  if (process.stdin.isTTY) return;
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
};

/** Tell the parent which port we listen on (first stdout line, JSON). */
export const announce = (port: number): void => {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
};

export const exitOnSignals = (): void => {
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => process.exit(0));
};
