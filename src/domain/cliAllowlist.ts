/**
 * The /cli/execute allowlist (issue 3), pure. A request names a program by the exact absolute path
 * configured (or its realpath), or by the basename of a configured entry ("python3"); nothing else.
 * No PATH search, no normalisation of what the client sent: "/usr/bin/../bin/sh", "./python3" or a
 * symlink elsewhere pointing at an allowed program are refused, because they are not what was listed.
 */

/** One configured entry with the file it resolved to at start-up (realpath). */
export interface AllowedProgram {
  readonly configured: string
  readonly real: string
}

export interface Allowlist {
  readonly byPath: ReadonlyMap<string, AllowedProgram>
  readonly byName: ReadonlyMap<string, AllowedProgram>
}

export type Resolution =
  | { readonly _tag: "Allowed"; readonly program: AllowedProgram }
  | { readonly _tag: "Refused"; readonly reason: string }

const baseName = (p: string): string => p.slice(p.lastIndexOf("/") + 1)

/** Builds the lookup tables once; the first entry with a given basename wins. */
export const compileAllowlist = (programs: ReadonlyArray<AllowedProgram>): Allowlist => {
  const byPath = new Map<string, AllowedProgram>()
  const byName = new Map<string, AllowedProgram>()
  for (const p of programs) {
    byPath.set(p.configured, p)
    if (!byPath.has(p.real)) byPath.set(p.real, p)
    const name = baseName(p.configured)
    if (!byName.has(name)) byName.set(name, p)
  }
  return { byPath, byName }
}

/** A program name is a bare file name: letters, digits, ".", "_", "+", "-"; not "." or "..". */
const BARE_NAME = /^(?!\.\.?$)[A-Za-z0-9._+-]+$/

export const resolveCommand = (list: Allowlist, command: string): Resolution => {
  if (command.startsWith("/")) {
    const program = list.byPath.get(command)
    return program === undefined
      ? { _tag: "Refused", reason: `"${command}" is not in cli.allowed_commands` }
      : { _tag: "Allowed", program }
  }
  if (!BARE_NAME.test(command)) {
    return { _tag: "Refused", reason: `"${command}" must be an allowed absolute path or the bare name of one (no relative paths)` }
  }
  const program = list.byName.get(command)
  return program === undefined
    ? { _tag: "Refused", reason: `"${command}" is not in cli.allowed_commands` }
    : { _tag: "Allowed", program }
}
