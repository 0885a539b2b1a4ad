// Host -> guest vsock through the vmm's hybrid vsock socket (docs/architecture.md): `CONNECT <port>\n`, `OK <hostport>\n`.
import { createConnection, type Socket } from "node:net";
import { LineReader } from "../util/bounded-read.ts";

/** The handshake reply is `OK <port>\n` or a short error line: longer is a misbehaving vmm. */
const HANDSHAKE_LINE_MAX = 256;

/** Opens a stream to guest vsock `port`; resolves once the vmm answered OK, with no handshake bytes left in it. */
export function dialVsock(vsockPath: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: vsockPath });
    const lines = new LineReader(HANDSHAKE_LINE_MAX, `vsock CONNECT ${port} handshake`);
    const timer = setTimeout(() => fail(new Error(`vsock CONNECT ${port} timed out after ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    function onData(chunk: Buffer): void {
      let first: Buffer | undefined;
      try {
        [first] = lines.push(chunk, 1);
      } catch (e) {
        return fail(e as Error);
      }
      if (first === undefined) return;
      const line = first.toString("utf8");
      if (!/^OK \d{1,10}$/.test(line)) return fail(new Error(`vsock CONNECT ${port} refused: ${line.slice(0, 200) || "closed"}`));
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", fail);
      socket.off("close", onClose);
      const rest = lines.rest();
      if (rest.length > 0) socket.unshift(rest); // guest bytes that came with the OK line
      resolve(socket);
    }
    function onClose(): void {
      fail(new Error(`vsock CONNECT ${port}: closed by the vmm (nothing listening in the guest?)`));
    }
    socket.on("data", onData);
    socket.on("error", fail);
    socket.on("close", onClose);
    socket.once("connect", () => socket.write(`CONNECT ${port}\n`));
  });
}
