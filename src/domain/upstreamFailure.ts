/** Classify a Node/undici error from an upstream exchange into a failure reason (pure). */
import type { UpstreamFailure } from "./errors.ts"

const CODES: Record<string, UpstreamFailure> = {
  UND_ERR_CONNECT_TIMEOUT: "timeout",
  UND_ERR_HEADERS_TIMEOUT: "timeout",
  UND_ERR_BODY_TIMEOUT: "timeout",
  ETIMEDOUT: "timeout",
  ECONNREFUSED: "connect",
  EHOSTUNREACH: "connect",
  ENETUNREACH: "connect",
  EADDRNOTAVAIL: "connect",
  ENOTFOUND: "dns",
  EAI_AGAIN: "dns",
  ECONNRESET: "reset",
  EPIPE: "reset",
  UND_ERR_SOCKET: "reset",
  UND_ERR_CLOSED: "reset",
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: "bad_response",
  UND_ERR_RES_EXCEEDED_MAX_SIZE: "bad_response",
  UND_ERR_INVALID_ARG: "bad_response"
}

export const classifyUpstreamError = (err: unknown): UpstreamFailure => {
  let cur: unknown = err
  for (let depth = 0; depth < 4 && cur !== null && typeof cur === "object"; depth++) {
    const code = (cur as { code?: unknown }).code
    if (typeof code === "string") {
      const known = CODES[code]
      if (known !== undefined) return known
      if (code.startsWith("HPE_")) return "bad_response"
      if (code.startsWith("ERR_TLS") || code.startsWith("CERT_") || code.includes("SELF_SIGNED") || code.startsWith("UNABLE_TO")) return "tls"
    }
    cur = (cur as { cause?: unknown }).cause
  }
  return "bad_response"
}

/** Only failures where the upstream can not have acted on the request are worth a retry. */
export const isRetryableFailure = (reason: UpstreamFailure): boolean => reason === "reset" || reason === "connect"
