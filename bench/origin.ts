// Fixed origin for the HTTP workloads: raw node:http, keep-alive, 1 KiB body.
// /cacheable* answers the same body with "cache-control: max-age=3600" (the cachehit workload);
// every other path has no freshness information, so a cache never stores it.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { announce, exitOnSignals, exitWithParent } from "./lib/child.ts";

const body = Buffer.alloc(1024, "x");
const headers = {
  "content-type": "text/plain",
  "content-length": String(body.length),
};

const cacheableHeaders = { ...headers, "cache-control": "max-age=3600" };

const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  req.resume(); // drain any request body
  res.writeHead(200, req.url?.startsWith("/cacheable") === true ? cacheableHeaders : headers);
  res.end(body);
});
server.headersTimeout = 0;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;

exitOnSignals();
exitWithParent();
server.listen(0, "127.0.0.1", () => announce((server.address() as AddressInfo).port));
