// Baseline HTTP proxy: the fastest a Node proxy can plausibly be.
// Raw node:http server + undici dispatch (keep-alive Pool for the reverse
// route, Agent for absolute-form forward requests), hop-by-hop headers
// stripped, CONNECT piped through node:net. Same CLI as Gatehouse:
//   node bench/baseline-proxy.ts --config FILE --host H --port N
// With BASELINE_DUTY_HEADERS=1 it also adds the headers Gatehouse adds by default (to the origin: Via,
// X-Forwarded-For/-Proto/-Host, Forwarded, X-Request-Id; to the client: Via and the two default security
// headers), so a run with it as GATEHOUSE_CMD measures what those bytes cost the origin and wrk alone.
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { IncomingHttpHeaders } from "node:http";
import { parseArgs } from "node:util";
import { Agent, Pool } from "undici";
import type { Dispatcher } from "undici";
import { parse as parseYaml } from "yaml";
import { exitOnSignals } from "./lib/child.ts";

const { values: args } = parseArgs({
  options: {
    config: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
  },
});

const readBackend = (file: string | undefined): string => {
  if (file === undefined) throw new Error("--config FILE is required");
  const doc = parseYaml(readFileSync(file, "utf8")) as { routing?: { default_backend?: unknown } };
  const backend = doc.routing?.default_backend;
  if (typeof backend !== "string") throw new Error("routing.default_backend missing in config");
  return new URL(backend).origin;
};

const backend = readBackend(args.config);
const dispatcherOptions = { keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000, pipelining: 1 };
const reversePool = new Pool(backend, dispatcherOptions);
const forwardAgent = new Agent(dispatcherOptions);

const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
  "te", "trailer", "transfer-encoding", "upgrade", "host",
]);

const DUTY = process.env["BASELINE_DUTY_HEADERS"] === "1";
let requestCounter = 0;

/** The request headers Gatehouse adds by default (values of the same length as its own). */
const addRequestDuties = (out: Record<string, string | string[]>, req: http.IncomingMessage): void => {
  const client = req.socket.remoteAddress ?? "";
  const host = req.headers.host ?? "";
  out["via"] = "1.1 gatehouse";
  out["x-forwarded-for"] = client;
  out["x-forwarded-proto"] = "http";
  out["x-forwarded-host"] = host;
  out["forwarded"] = `for=${client};host="${host}";proto=http`;
  out["x-request-id"] = `0badcafe-${(++requestCounter).toString(36)}`;
};

/** The response headers Gatehouse adds by default. */
const addResponseDuties = (out: Record<string, string | string[]>): void => {
  out["x-content-type-options"] = "nosniff";
  out["x-frame-options"] = "DENY";
  out["via"] = "1.1 gatehouse";
};

const stripHopByHop = (headers: IncomingHttpHeaders): Record<string, string | string[]> => {
  const connection = headers["connection"];
  const listed = typeof connection === "string"
    ? new Set(connection.toLowerCase().split(",").map((s) => s.trim()))
    : undefined;
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed?.has(name) === true) continue;
    out[name] = value;
  }
  return out;
};

const requestHeaders = (req: http.IncomingMessage): Record<string, string | string[]> => {
  const out = stripHopByHop(req.headers);
  if (DUTY) addRequestDuties(out, req);
  return out;
};

const sendError = (res: http.ServerResponse, status: number): void => {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "content-length": "0" });
  res.end();
};

const proxy = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  const url = req.url ?? "/";
  let dispatcher: Dispatcher;
  let origin: string;
  let path: string;
  if (url.startsWith("/")) {
    dispatcher = reversePool;
    origin = backend;
    path = url;
  } else {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      sendError(res, 400);
      return;
    }
    dispatcher = forwardAgent;
    origin = target.origin;
    path = `${target.pathname}${target.search}`;
  }
  const method = req.method ?? "GET";
  const hasBody = req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
  if (!hasBody) req.resume();

  dispatcher.dispatch(
    { origin, path, method, headers: requestHeaders(req), body: hasBody ? req : null },
    {
      onRequestStart: (controller) => {
        res.once("close", () => {
          if (!res.writableFinished) controller.abort(new Error("client closed"));
        });
      },
      onResponseStart: (controller, statusCode, headers) => {
        const out = stripHopByHop(headers);
        if (DUTY) addResponseDuties(out);
        res.writeHead(statusCode, out);
        res.on("drain", () => controller.resume());
      },
      onResponseData: (controller, chunk) => {
        if (!res.write(chunk)) controller.pause();
      },
      onResponseEnd: () => {
        res.end();
      },
      onResponseError: (_controller, error) => {
        if (error.message !== "client closed") sendError(res, 502);
      },
    },
  );
};

const tunnel = (req: http.IncomingMessage, client: net.Socket, head: Buffer): void => {
  const target = URL.parse(`http://${req.url ?? ""}`);
  const port = Number(target?.port);
  if (target === null || !Number.isInteger(port) || port <= 0) {
    client.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
    return;
  }
  const upstream = net.connect(port, target.hostname.replace(/^\[|\]$/g, ""), () => {
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  upstream.setNoDelay(true);
  client.setNoDelay(true);
  upstream.on("error", () => {
    if (upstream.connecting) client.end("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
    else client.destroy();
  });
  client.on("error", () => upstream.destroy());
};

const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  if (req.url === "/health/readiness" || req.url === "/health/liveness") {
    req.resume();
    res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
    res.end("ok");
    return;
  }
  proxy(req, res);
});
server.headersTimeout = 0;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
server.on("connect", tunnel);
server.on("clientError", (_err, socket) => socket.destroy());

exitOnSignals();
server.listen(Number(args.port), args.host);
