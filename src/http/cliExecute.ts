/**
 * POST /cli/execute (issue 3), dispatched in the `control` phase. In order: switched off → 404;
 * other methods → 405; bearer token (401) or, without a token, loopback clients naming a loopback
 * host only (403; the Host check stops DNS rebinding, loopbackHost.ts);
 * Content-Type: application/json (415: a browser cannot send that cross-site without a CORS
 * preflight, which this endpoint never grants); body read bounded by the largest body a request
 * within the documented limits can take (413), each part measured decoded as it arrives (400 naming
 * the part: `stdin`, `args.3`); Schema (400 with the field path); allowlist (403); concurrency (429 +
 * Retry-After, no queue); then the process runs in this request's scope. Streaming: process output
 * Stream → NDJSON lines → res.write, waiting for 'drain' when write() says so, so a slow reader slows
 * the process (its pipe fills), not our memory; a reader that stops for the connection's timeout is
 * cut (write_timeout), which ends the request and frees its slot.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Socket } from "node:net"
import { bearerMatches, bodyCapFor, type FieldError, isLoopback, makePartMeter, parseCliRequest, tokenDigest } from "../domain/cliRequest.ts"
import { eventOrClose } from "./eventOrClose.ts"
import { exitLine, type ExitInfo, makeEventEncoder, startLine, wholeDocumentPieces } from "../domain/cliEvents.ts"
import { LOOPBACK_HOST_REQUIRED, namesLoopbackHost } from "../domain/loopbackHost.ts"
import {
  ClientAborted,
  type CommandNotAllowed,
  EndpointNotFound,
  Forbidden,
  InvalidBody,
  MethodNotAllowed,
  PayloadTooLarge,
  type ProcessSpawnFailed,
  type TooManyProcesses,
  Unauthorized,
  UnsupportedMediaType
} from "../domain/errors.ts"
import type { RequestContext } from "../domain/RequestContext.ts"
import type { CliRunner, Execution } from "../services/CliRunner.ts"

export const CLI_PATH = "/cli/execute"

/** "/cli/execute" or "/cli/execute?..." (origin-form path as received). */
export const isCliPath = (path: string): boolean =>
  path.startsWith(CLI_PATH) && (path.length === CLI_PATH.length || path.charCodeAt(CLI_PATH.length) === 63 /* ? */)

const isJson = (contentType: string | undefined): boolean => {
  if (contentType === undefined) return false
  const semi = contentType.indexOf(";")
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === "application/json"
}

/**
 * The request body, at most `limit` bytes (Content-Length checked up front, chunked counted), each
 * part measured by `meter` as it arrives. Refused before its end, the connection closes after the
 * answer (the rest of the body is not read).
 */
const readBody = (req: IncomingMessage, res: ServerResponse, limit: number, meter: { write(chunk: Uint8Array): FieldError | undefined }, ctx: RequestContext) =>
  Effect.callback<string, PayloadTooLarge | InvalidBody | ClientAborted>((resume) => {
    const declared = Number(req.headers["content-length"] ?? 0)
    if (declared > limit) {
      resume(Effect.fail(new PayloadTooLarge({ length: declared, limit })))
      return
    }
    const chunks: Array<Buffer> = []
    const cleanup = () => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onError)
      req.off("aborted", onError)
    }
    const refuse = (error: PayloadTooLarge | InvalidBody) => {
      cleanup()
      req.pause()
      res.shouldKeepAlive = false
      resume(Effect.fail(error))
    }
    const onData = (chunk: Buffer) => {
      ctx.bytesIn += chunk.length
      if (ctx.bytesIn > limit) return refuse(new PayloadTooLarge({ length: ctx.bytesIn, limit }))
      const part = meter.write(chunk)
      if (part !== undefined) return refuse(new InvalidBody(part))
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
    }
    const onError = () => {
      cleanup()
      resume(Effect.fail(new ClientAborted({ phase: "cli_request_body" })))
    }
    req.on("data", onData)
    req.once("end", onEnd)
    req.once("error", onError)
    req.once("aborted", onError)
    return Effect.sync(cleanup)
  })

type Write = (text: string) => Effect.Effect<void>

/**
 * res.write, then wait for 'drain' when the socket buffer is full (or for 'close'). The connection's
 * inactivity timeout (`stallMs`: the listener's max(timeouts.read, timeouts.write)) is off while the
 * process runs, so a program quiet for long does not cut its stream (process_timeout bounds that), and
 * on only while a write waits: a client that stops reading is cut by the listener's 'timeout' like
 * any response's (logged `write_timeout`), and the request ends, killing the process and freeing its
 * slot. Progress resets the timer (Node counts socket writes), so a slow reader is not cut.
 */
const makeWrite = (res: ServerResponse, socket: Socket, stallMs: number): Write => {
  const drained = Effect.suspend(() => {
    socket.setTimeout(stallMs)
    return eventOrClose(res, "drain")
  }).pipe(Effect.ensuring(Effect.sync(() => { if (!socket.destroyed) socket.setTimeout(0) })))
  return (text) => res.write(text) ? Effect.void : drained
}

/**
 * spawn's E2BIG: the args (with the environment) are more than the kernel takes for one program
 * (ARG_MAX, 2 MiB on a default Linux), below the per-request limits. The client's input: 400 naming args.
 */
const argsTooLongForOs = (e: ProcessSpawnFailed): Effect.Effect<never, ProcessSpawnFailed | InvalidBody> =>
  (e.cause as { readonly code?: unknown } | undefined)?.code === "E2BIG"
    ? Effect.fail(new InvalidBody({ path: "args", message: "longer than the operating system takes for one program (E2BIG: args + environment over ARG_MAX)" }))
    : Effect.fail(e)

const recordExit = (ctx: RequestContext, exit: ExitInfo) => {
  if (ctx.cli !== undefined) ctx.cli = { ...ctx.cli, exit_code: exit.code, signal: exit.signal, killed: exit.killed }
  if (exit.killed !== null) ctx.outcome = `cli_${exit.killed}`
}

const streamNdjson = (exec: Execution, res: ServerResponse, ctx: RequestContext, write: Write) =>
  Effect.gen(function*() {
    res.writeHead(200, {
      "content-type": "application/x-ndjson",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "x-request-id": ctx.id
    })
    ctx.status = 200
    const start = startLine(exec.pid)
    ctx.bytesOut += start.length
    yield* write(start)
    const encoder = makeEventEncoder()
    yield* Stream.runForEachArray(exec.output, (chunks) => {
      let text = ""
      for (const c of chunks) text += encoder.chunk(c.stream, c.data)
      if (text === "") return Effect.void
      ctx.bytesOut += Buffer.byteLength(text)
      return write(text)
    })
    const exit = yield* exec.exit
    recordExit(ctx, exit)
    const tail = encoder.flush() + exitLine(exit)
    ctx.bytesOut += Buffer.byteLength(tail)
    res.end(tail)
  })

/** Up to this many characters of JSON, the non-streaming answer is sent whole, with a Content-Length. */
const INLINE_ANSWER_CHARS = 1024 * 1024

/**
 * stream: false. The output is held (up to max_output_bytes) until the process ends, then sent as one
 * JSON document. A small one goes whole with a Content-Length; a larger one is written piece by piece
 * as it is encoded (chunked, with backpressure), never as one string: its JSON can be 6 times the
 * output, and V8 refuses strings over ~512 MiB (the answer was a 500 after the process had run).
 */
const collectJson = (exec: Execution, res: ServerResponse, ctx: RequestContext, write: Write) =>
  Effect.gen(function*() {
    const out: Record<"stdout" | "stderr", Array<Uint8Array>> = { stdout: [], stderr: [] }
    yield* Stream.runForEachArray(exec.output, (chunks) =>
      Effect.sync(() => {
        for (const c of chunks) out[c.stream].push(c.data)
      }))
    const exit = yield* exec.exit
    recordExit(ctx, exit)
    const pieces = wholeDocumentPieces(exec.pid, Buffer.concat(out.stdout), Buffer.concat(out.stderr), exit)
    out.stdout = out.stderr = []
    let head = ""
    let next = pieces.next()
    while (next.done !== true && head.length < INLINE_ANSWER_CHARS) {
      head += next.value
      next = pieces.next()
    }
    const headers = { "content-type": "application/json", "cache-control": "no-store", "x-request-id": ctx.id }
    ctx.status = 200
    ctx.bytesOut = Buffer.byteLength(head)
    if (next.done === true) {
      res.writeHead(200, { ...headers, "content-length": ctx.bytesOut })
      res.end(head)
      return
    }
    res.writeHead(200, headers)
    yield* write(head)
    for (; next.done !== true; next = pieces.next()) {
      ctx.bytesOut += Buffer.byteLength(next.value)
      yield* write(next.value)
    }
    res.end()
  })

export type CliExecuteError =
  | EndpointNotFound
  | MethodNotAllowed
  | Unauthorized
  | Forbidden
  | UnsupportedMediaType
  | PayloadTooLarge
  | ClientAborted
  | InvalidBody
  | CommandNotAllowed
  | TooManyProcesses
  | ProcessSpawnFailed

/** Built once with the layer; per request only this closure runs. */
export const makeCliExecute = (runner: CliRunner["Service"], maxBodyBytes: number) => {
  const s = runner.settings
  const digest = s.auth_token === "" ? undefined : tokenDigest(s.auth_token)
  // server.limits.max_body_bytes bounds a chunked body here too, as it bounds every other request's
  const bodyLimit = Math.min(bodyCapFor(s.max_stdin_bytes), maxBodyBytes)

  const run = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext, exec: Execution, stream: boolean): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function*() {
      // The listener's socket timeout would cut a long-quiet stream: process_timeout bounds the run
      // instead, and the timeout applies only while a write waits for the client (makeWrite).
      const socket = req.socket
      const previous = socket.timeout ?? 0
      socket.setTimeout(0)
      yield* Effect.addFinalizer(() => Effect.sync(() => { if (!socket.destroyed) socket.setTimeout(previous) }))
      if (ctx.cli !== undefined) ctx.cli = { ...ctx.cli, pid: exec.pid }
      const write = makeWrite(res, socket, previous)
      yield* (stream ? streamNdjson(exec, res, ctx, write) : collectJson(exec, res, ctx, write))
    })

  return (req: IncomingMessage, res: ServerResponse, ctx: RequestContext, expectContinue: boolean): Effect.Effect<void, CliExecuteError> =>
    Effect.gen(function*() {
      ctx.kind = "control"
      if (!s.enabled) return yield* new EndpointNotFound({ path: CLI_PATH })
      if (ctx.method !== "POST") return yield* new MethodNotAllowed({ allow: "POST" })
      if (digest !== undefined) {
        if (!bearerMatches(req.headers.authorization, digest)) return yield* new Unauthorized({ realm: "gatehouse-cli" })
      } else if (!isLoopback(ctx.clientIp)) {
        return yield* new Forbidden({ reason: "cli.auth_token is not set: only loopback clients may run commands", rule: "cli.loopback_only" })
      } else if (!namesLoopbackHost(req.url ?? "/", req.headers.host)) {
        return yield* new Forbidden({ reason: `cli.auth_token is not set: ${LOOPBACK_HOST_REQUIRED}`, rule: "cli.loopback_only" })
      }
      if (!isJson(req.headers["content-type"])) return yield* new UnsupportedMediaType({ expected: "application/json" })
      if (expectContinue) res.writeContinue()
      const text = yield* readBody(req, res, bodyLimit, makePartMeter(s.max_stdin_bytes), ctx)
      const parsed = parseCliRequest(text, s.max_stdin_bytes)
      if (parsed._tag === "Failure") return yield* new InvalidBody(parsed.failure)
      const body = parsed.success
      const stdin = body.stdin === undefined ? undefined : Buffer.from(body.stdin, "utf8")
      const program = yield* runner.resolve(body.command)
      const args = body.args ?? []
      ctx.upstream = program.configured
      ctx.cli = { command: program.configured, args: args.length, pid: 0, exit_code: null, signal: null, killed: null }
      let started: Execution | undefined
      yield* Effect.scoped(
        Effect.flatMap(Effect.catchTag(runner.start(program, args, stdin), "ProcessSpawnFailed", argsTooLongForOs), (exec) => {
          started = exec
          return run(req, res, ctx, exec, body.stream !== false)
        })
      ).pipe(
        // The request ended first (client gone, shutdown): closing the scope killed the process group
        // and waited for it, so its exit — the signal that ended it, killed: interrupted — is known now.
        Effect.onInterrupt(() => started === undefined ? Effect.void : Effect.map(started.exit, (exit) => recordExit(ctx, exit)))
      )
    })
}
