// Baseline CONNECT tunnel: a raw node:net server that reads the CONNECT
// request head, answers 200, then pipes bytes both ways. Prints {"port":N}.
import net from "node:net";
import type { AddressInfo } from "node:net";
import { announce, exitOnSignals, exitWithParent } from "./lib/child.ts";

const HEAD_END = Buffer.from("\r\n\r\n");
const MAX_HEAD = 16 * 1024;

const open = (client: net.Socket, head: Buffer, rest: Buffer): void => {
  const requestLine = head.toString("latin1", 0, head.indexOf("\r\n"));
  const match = /^CONNECT \[?([^\]\s]+?)\]?:(\d+) HTTP\/1\.[01]$/.exec(requestLine);
  if (match === null || match[1] === undefined || match[2] === undefined) {
    client.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
    return;
  }
  const upstream = net.connect(Number(match[2]), match[1], () => {
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (rest.length > 0) upstream.write(rest);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.setNoDelay(true);
  upstream.on("error", () => {
    if (upstream.connecting) client.end("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
    else client.destroy();
  });
  client.on("error", () => upstream.destroy());
};

const server = net.createServer((client) => {
  client.setNoDelay(true);
  let buffered = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf(HEAD_END);
    if (end === -1) {
      if (buffered.length > MAX_HEAD) client.destroy();
      return;
    }
    client.off("data", onData);
    client.pause();
    open(client, buffered.subarray(0, end), buffered.subarray(end + HEAD_END.length));
  };
  client.on("data", onData);
  client.on("error", () => client.destroy());
});

exitOnSignals();
exitWithParent();
server.listen(0, "127.0.0.1", () => announce((server.address() as AddressInfo).port));
