// Host -> guest vsock through the vmm's hybrid vsock socket (docs/architecture.md): `CONNECT <port>\n`, `OK <hostport>\n`.
import { createConnection, type Socket } from "node:net";

/** Opens a stream to guest vsock `port`; resolves once the vmm answered OK, with no handshake bytes left in it. */
export function dialVsock(vsockPath: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: vsockPath });
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`vsock CONNECT ${port} timed out after ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    function onData(chunk: Buffer): void {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > 256) fail(new Error("vsock handshake: no line in the first 256 bytes"));
        return;
      }
      const line = head.subarray(0, nl).toString("utf8");
      if (!line.startsWith("OK ")) return fail(new Error(`vsock CONNECT ${port} refused: ${line || "closed"}`));
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", fail);
      socket.off("close", onClose);
      const rest = head.subarray(nl + 1);
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
