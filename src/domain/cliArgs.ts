/** Command-line flags, parsed purely. Flags beat env, env beats files, files beat defaults. */
export interface CliArgs {
  readonly config: string | undefined
  readonly host: string | undefined
  readonly port: string | undefined
  readonly env: string | undefined
  readonly checkConfig: boolean
  readonly help: boolean
}

export type CliArgsResult = { readonly ok: true; readonly args: CliArgs } | { readonly ok: false; readonly error: string }

const VALUE_FLAGS = new Set(["--config", "--host", "--port", "--env"])

export const USAGE = `usage: gatehouse [--config FILE] [--host HOST] [--port PORT] [--env dev|prod] [--check-config]
  --config FILE    main YAML config (default: config/proxy.yaml when present, else embedded defaults)
  --env NAME       merge the overlay beside the main file over it: FILE.NAME.yaml for --config FILE.yaml
                   (config/proxy.NAME.yaml by default); it must exist (also PROXY_ENV)
  --host, --port   listener address (beat PROXY_HOST / PROXY_PORT and the files)
  --check-config   validate the configuration and run every start-up check short of listening
                   (files, TLS material, cli.working_dir, listen addresses); print the result and exit (like nginx -t)`

export const parseCliArgs = (argv: ReadonlyArray<string>): CliArgsResult => {
  const values: Record<string, string> = {}
  let checkConfig = false
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!
    const eq = raw.indexOf("=")
    const flag = raw.startsWith("--") && eq > 0 ? raw.slice(0, eq) : raw
    if (flag === "--check-config") checkConfig = true
    else if (flag === "--help" || flag === "-h") help = true
    else if (VALUE_FLAGS.has(flag)) {
      const value = eq > 0 && raw.startsWith("--") ? raw.slice(eq + 1) : argv[++i]
      if (value === undefined || value === "") return { ok: false, error: `${flag} needs a value\n${USAGE}` }
      values[flag.slice(2)] = value
    } else return { ok: false, error: `unknown argument: ${raw}\n${USAGE}` }
  }
  return {
    ok: true,
    args: { config: values.config, host: values.host, port: values.port, env: values.env, checkConfig, help }
  }
}
