// Pushes bytes through a CONNECT tunnel and prints one JSON result line.
//   node bench/tunnel-client.ts --proxy-port P --target-port T --bytes N --direction up|down
import net from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    "proxy-port": { type: "string" },
    "target-port": { type: "string" },
    bytes: { type: "string", default: String(1024 ** 3) },
    direction: { type: "string", default: "up" },
    "timeout-ms": { type: "string", default: "120000" },
  },
});
const proxyPort = Number(values["proxy-port"]);
const targetPort = Number(values["target-port"]);
const total = Number(values.bytes);
const direction = values.direction === "down" ? "down" : "up";
const CHUNK = Buffer.alloc(1024 * 1024, 0x62);

const fail = (message: string): never => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: message })}\n`);
  process.exit(1);
};
setTimeout(() => fail(`timed out after ${values["timeout-ms"]} ms`), Number(values["timeout-ms"])).unref();

/** Opens the tunnel; resolves with any bytes that arrived after the response head. */
const connectTunnel = (socket: net.Socket): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      socket.off("data", onData);
      socket.pause();
      const statusLine = buf.toString("latin1", 0, buf.indexOf("\r\n"));
      if (!/^HTTP\/1\.[01] 200\b/.test(statusLine)) reject(new Error(`CONNECT refused: ${statusLine}`));
      else resolve(buf.subarray(end + 4));
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.once("end", () => reject(new Error("proxy closed the connection during CONNECT")));
    socket.write(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n\r\n`);
  });

const upload = (socket: net.Socket): Promise<void> =>
  new Promise((resolve, reject) => {
    socket.once("data", (chunk: Buffer) => (chunk.toString() === "K" ? resolve() : reject(new Error("bad ack"))));
    socket.once("end", () => reject(new Error("tunnel closed before ack")));
    socket.resume();
    socket.write(`U ${total}\n`);
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
    };
    pump();
  });

const download = (socket: net.Socket, early: number): Promise<void> =>
  new Promise((resolve, reject) => {
    let received = early;
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received >= total) {
        socket.off("data", onData);
        resolve();
      }
    };
    socket.on("data", onData);
    socket.once("end", () => {
      if (received < total) reject(new Error(`tunnel ended after ${received} of ${total} bytes`));
    });
    socket.write(`D ${total}\n`);
    socket.resume();
  });

const socket = net.connect(proxyPort, "127.0.0.1");
socket.setNoDelay(true);
try {
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const early = await connectTunnel(socket);
  const started = process.hrtime.bigint();
  await (direction === "up" ? upload(socket) : download(socket, early.length));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${JSON.stringify({ ok: true, direction, bytes: total, seconds, mbps: total / 1e6 / seconds })}\n`);
  socket.destroy();
  process.exit(0);
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
