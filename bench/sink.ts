// Byte sink/source behind the CONNECT tunnel. Protocol (first line from client):
//   "U <n>\n": client uploads n bytes; we reply "K" once all n arrived.
//   "D <n>\n": we send n bytes, then end.
// Prints {"port":N}.
import net from "node:net";
import type { AddressInfo } from "node:net";
import { announce, exitOnSignals, exitWithParent } from "./lib/child.ts";

const CHUNK = Buffer.alloc(1024 * 1024, 0x61);

const download = (socket: net.Socket, total: number): void => {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= chunk.length;
      if (!socket.write(chunk)) {
        socket.once("drain", pump);
        return;
      }
    }
    socket.end();
  };
  pump();
};

const upload = (socket: net.Socket, total: number, already: number): void => {
  let received = already;
  const check = (): void => {
    if (received >= total) {
      socket.off("data", onData);
      socket.end("K");
    }
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    check();
  };
  socket.on("data", onData);
  check();
};

const server = net.createServer((socket) => {
  socket.on("error", () => socket.destroy());
  let head = "";
  const onHead = (chunk: Buffer): void => {
    const nl = chunk.indexOf(0x0a);
    if (nl === -1) {
      head += chunk.toString("latin1");
      if (head.length > 64) socket.destroy();
      return;
    }
    socket.off("data", onHead);
    head += chunk.toString("latin1", 0, nl);
    const [mode, size] = head.trim().split(" ");
    const total = Number(size);
    if (!Number.isSafeInteger(total) || total < 0) {
      socket.destroy();
      return;
    }
    if (mode === "D") download(socket, total);
    else if (mode === "U") upload(socket, total, chunk.length - nl - 1);
    else socket.destroy();
  };
  socket.on("data", onHead);
});

exitOnSignals();
exitWithParent();
server.listen(0, "127.0.0.1", () => announce((server.address() as AddressInfo).port));
