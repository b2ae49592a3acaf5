/**
 * The filter plugin interface. A filter is compiled from the current rules (at start-up and on every
 * reload of config/filters.yaml) into an `ActiveFilter` whose hooks are plain synchronous functions:
 * they run on the hot path, once per connection, request, response head or body chunk, and answer
 * `undefined` (continue) or a `Blocked` (refuse; 403 naming the rule). A filter with nothing to do
 * for the current rules compiles to `undefined` and costs nothing.
 *
 * A new filter is one file exporting a `FilterPlugin` and one line in `builtins.ts`.
 */
import type { FilterRules } from "../../domain/config/security.ts"
import type { Blocked } from "../../domain/errors.ts"
import type { HeaderMap } from "../../domain/hopHeaders.ts"

/** What the request filters judge: known before routing. */
export interface FilterRequest {
  /** forward: absolute-form target; reverse: origin-form (Host header); connect: CONNECT authority. */
  readonly kind: "forward" | "reverse" | "connect"
  /** The hostname as the client wrote it (lowercased, no port, no brackets). */
  readonly rawHost: string
  /** The normalised host (hostName.ts#normaliseHost); undefined when it is not a valid host name. */
  readonly host: string | undefined
  readonly port: number | undefined
  readonly clientIp: string
  readonly method: string
}

/** A stateful inspector for one response body, fed the chunks in order as they stream through. */
export interface BodyInspector {
  /**
   * Body bytes to hold back (with the response head) before anything reaches the client, so that
   * a detection in them is still answered 403 instead of cutting the connection. 0: hold only the
   * head until the first chunk has been inspected.
   */
  readonly holdBytes: number
  data(chunk: Buffer): Blocked | undefined
  /** The body is complete (whole-body checks, e.g. digests). */
  end(): Blocked | undefined
}

export interface ActiveFilter {
  readonly name: string
  /** At connection accept, before any byte is read (IP ACL). */
  readonly connection?: (clientIp: string) => Blocked | undefined
  /** Before routing (domain filter); also for CONNECT, before dialling. */
  readonly request?: (req: FilterRequest) => Blocked | undefined
  /** The upstream response head, before it is written (content type). */
  readonly responseHead?: (req: FilterRequest, status: number, headers: HeaderMap) => Blocked | undefined
  /** A fresh inspector per response body, or undefined to let this body pass uninspected. */
  readonly responseBody?: (req: FilterRequest, status: number, headers: HeaderMap) => BodyInspector | undefined
}

export interface FilterPlugin {
  readonly name: string
  /** Build the matchers from the rules (once per load); undefined when the rules leave nothing to do. */
  readonly compile: (rules: FilterRules) => ActiveFilter | undefined
}
