/**
 * URL-valued config keys, checked the way their consumers parse them (WHATWG `new URL`: the router,
 * the Redis client, the OTLP exporter). A URL that passes here cannot crash start-up later with a
 * bare `TypeError: Invalid URL`: an out-of-range port (`http://h:99999`) or a port 0 is refused at
 * decode, with the key named.
 */
import * as Schema from "effect/Schema"

/** The URL when `s` parses, has one of `protocols` (e.g. "http:"), a host and a port in 1-65535 (or none). */
const parseWithPort = (s: string, protocols: ReadonlyArray<string>): URL | undefined => {
  const u = URL.parse(s)
  if (u === null || !protocols.includes(u.protocol) || u.hostname === "") return undefined
  return u.port === "0" ? undefined : u
}

const PORT_RULE = "port 1-65535"

/** http(s)://host[:port][/base-path] — no query, fragment or whitespace (a route's upstream base). */
const BACKEND_SHAPE = /^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/

export const BackendUrl = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) =>
    BACKEND_SHAPE.test(s) && parseWithPort(s, ["http:", "https:"]) !== undefined
      ? undefined
      : `expected an http(s) URL such as "http://127.0.0.1:8000" (http://host[:port][/base-path], ${PORT_RULE})`
  ))
)

/** Any http(s) URL (an OTLP collector endpoint). */
export const HttpUrl = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) =>
    /^https?:\/\/\S+$/.test(s) && parseWithPort(s, ["http:", "https:"]) !== undefined
      ? undefined
      : `expected an http(s) URL such as "http://127.0.0.1:4318/v1/traces" (${PORT_RULE})`
  ))
)

/** redis:// or rediss:// (TLS) URL, as node-redis parses it. */
export const RedisUrl = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) =>
    /^rediss?:\/\/\S+$/.test(s) && parseWithPort(s, ["redis:", "rediss:"]) !== undefined
      ? undefined
      : `expected a URL such as "redis://127.0.0.1:6379" (redis[s]://[user:password@]host[:port][/db], ${PORT_RULE})`
  ))
)
