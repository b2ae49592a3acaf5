/**
 * Process output as NDJSON events (issue 3), pure. One JSON object per line:
 *   {"type":"start","pid":1234}
 *   {"type":"stdout","data":"..."}            text that is valid UTF-8
 *   {"type":"stderr","data":"<b64>","encoding":"base64"}   anything else
 *   {"type":"exit","code":0,"signal":null,"duration_ms":12,"timed_out":false,"killed":null}
 * A multi-byte character split across two reads is held back until it is complete, so valid UTF-8
 * output never turns into base64 because of where the pipe happened to cut it.
 */
import { isUtf8 } from "node:buffer"

export type OutputStream = "stdout" | "stderr"

/**
 * Why Gatehouse killed a process, when it did: `timeout` (cli.process_timeout), `max_output_bytes`,
 * or `interrupted` — the request ended first (client gone, proxy shutdown). The exit event a client
 * receives can only say the first two; `interrupted` is for the access log and the metrics label.
 */
export const KILLED_REASONS = ["timeout", "max_output_bytes", "interrupted"] as const
export type KilledReason = typeof KILLED_REASONS[number]

/**
 * How a run ended. `code`, `signal` and `duration_ms` are the program's own: its exit status and the
 * time from its start to its exit, even when processes it left behind in its group kept stdout or
 * stderr open after it (the output, and so the answer, ends only when they close or are killed).
 * `timed_out`: process_timeout ended the program itself. `killed`: why Gatehouse killed the process
 * group, if it did; `timeout` with `timed_out: false` means the program had exited by itself and what
 * it left running (holding its output open) was killed at process_timeout.
 */
export interface ExitInfo {
  readonly code: number | null
  readonly signal: string | null
  readonly duration_ms: number
  readonly timed_out: boolean
  readonly killed: KilledReason | null
}

export const startLine = (pid: number): string => `{"type":"start","pid":${pid}}\n`

export const exitLine = (exit: ExitInfo): string => JSON.stringify({ type: "exit", ...exit }) + "\n"

/** Length of an incomplete UTF-8 sequence at the end of `b` (0 when it ends on a boundary). */
export const incompleteTail = (b: Uint8Array): number => {
  const n = b.length
  for (let back = 1; back <= 3 && back <= n; back++) {
    const byte = b[n - back]!
    if ((byte & 0xc0) === 0x80) continue // continuation byte: keep looking for the lead
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1
    return need > back ? back : 0
  }
  return 0
}

const concat = (a: Uint8Array, b: Uint8Array): Buffer => Buffer.concat([a, b])

const EMPTY = new Uint8Array(0)

/** Encodes output chunks of one process into NDJSON lines; keeps the per-stream carry-over. */
export const makeEventEncoder = () => {
  const pending: Record<OutputStream, Uint8Array> = { stdout: EMPTY, stderr: EMPTY }
  const line = (stream: OutputStream, bytes: Buffer): string =>
    isUtf8(bytes)
      ? `{"type":"${stream}","data":${JSON.stringify(bytes.toString("utf8"))}}\n`
      : `{"type":"${stream}","data":"${bytes.toString("base64")}","encoding":"base64"}\n`
  return {
    /** NDJSON for one chunk ("" when it was only the start of a character). */
    chunk(stream: OutputStream, data: Uint8Array): string {
      const all = pending[stream].length === 0 ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : concat(pending[stream], data)
      const tail = incompleteTail(all)
      const head = tail === 0 ? all : all.subarray(0, all.length - tail)
      if (!isUtf8(head)) {
        pending[stream] = EMPTY
        return line(stream, all)
      }
      pending[stream] = tail === 0 ? EMPTY : Buffer.from(all.subarray(all.length - tail))
      return head.length === 0 ? "" : line(stream, head)
    },
    /** What is still held back when the process ends (an incomplete character → base64). */
    flush(): string {
      let out = ""
      for (const s of ["stdout", "stderr"] as const) {
        if (pending[s].length > 0) out += line(s, Buffer.from(pending[s]))
        pending[s] = EMPTY
      }
      return out
    }
  }
}

/**
 * Output bytes per piece of the non-streaming answer: a multiple of 3, so base64 pieces join without
 * padding; as JSON text a piece is at most 6 × this many characters (`\u0001` per control byte).
 */
const PIECE_BYTES = 48 * 1024

/** One stream's output as the text of a JSON string value (without its quotes), piece by piece. */
function* stringPieces(bytes: Buffer, base64: boolean): Generator<string> {
  for (let from = 0; from < bytes.length;) {
    let to = Math.min(from + PIECE_BYTES, bytes.length)
    if (base64) {
      yield bytes.toString("base64", from, to)
    } else {
      // end the piece on a character boundary (the whole is valid UTF-8, so the rest begins one)
      if (to < bytes.length) to -= incompleteTail(bytes.subarray(from, to))
      const json = JSON.stringify(bytes.toString("utf8", from, to))
      yield json.slice(1, json.length - 1)
    }
    from = to
  }
}

/**
 * The non-streaming answer `{"pid","stdout","stdout_encoding"?,"stderr","stderr_encoding"?,"code",
 * "signal","duration_ms","timed_out","killed"}` as JSON text, in pieces of at most
 * 6 × PIECE_BYTES characters (each stream's output as text, or as base64 with a `*_encoding` marker
 * when it is not UTF-8). The output can be up
 * to cli.max_output_bytes, and as one string its JSON (6 characters per control byte, 4/3 as base64)
 * would pass V8's longest string (2^29 - 24 characters, ~512 MiB) far below the limits the
 * configuration accepts: built in pieces, the answer can be sent whatever the output.
 */
export function* wholeDocumentPieces(pid: number, stdout: Buffer, stderr: Buffer, exit: ExitInfo): Generator<string> {
  const outBase64 = !isUtf8(stdout)
  const errBase64 = !isUtf8(stderr)
  yield `{"pid":${pid},"stdout":"`
  yield* stringPieces(stdout, outBase64)
  yield outBase64 ? `","stdout_encoding":"base64","stderr":"` : `","stderr":"`
  yield* stringPieces(stderr, errBase64)
  const rest = JSON.stringify(exit)
  yield (errBase64 ? `","stderr_encoding":"base64",` : `",`) + rest.slice(1) + "\n"
}
