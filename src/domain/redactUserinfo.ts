/**
 * An absolute-form target without its credentials, for what the proxy writes down (OTel semconv
 * `url.full` MUST NOT contain them; the access log neither): `user:password@` becomes
 * `REDACTED:REDACTED@`, a bare `user@` too, so its shape tells nothing. Such a target is refused
 * (400, RFC 9110 §4.2.4), but it is still logged.
 */
export const redactUserinfo = (url: string): string => {
  if (url.indexOf("@") < 0) return url
  const start = url.indexOf("//") + 2
  if (start < 2) return url
  let end = start
  while (end < url.length && url[end] !== "/" && url[end] !== "?" && url[end] !== "#") end++
  const last = url.lastIndexOf("@", end - 1)
  return last < start ? url : `${url.slice(0, start)}REDACTED:REDACTED${url.slice(last)}`
}
