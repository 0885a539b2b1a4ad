// Test support: a hostile peer on a Unix socket (a guest behind the vmm's vsock or forward socket) that floods
// or stalls, and the daemon's peak RSS growth while it does. Only tests import this file.
import { createServer, type Server, type Socket } from "node:net";

/** Writes `total` bytes of `fill` to `sock` as fast as the reader takes them, stopping when it hangs up.
 *  Resolves with how many bytes went out. */
export function flood(sock: Socket, total: number, fill = 0x78): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, fill);
  let sent = 0;
  return new Promise((resolve) => {
    const stop = () => resolve(sent);
    sock.once("close", stop);
    sock.once("error", stop);
    const pump = () => {
      while (sent < total && !sock.destroyed) {
        sent += chunk.length;
        if (!sock.write(chunk)) return void sock.once("drain", pump);
      }
      stop();
    };
    pump();
  });
}

/** A Unix-socket server on `path`; `onConn` plays the peer. */
export function listenUnix(path: string, onConn: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve) => {
    const srv = createServer(onConn);
    srv.listen(path, () => resolve(srv));
  });
}

/** Runs `work` and returns its outcome and the peak RSS growth over the run (sampled every 5 ms). */
export async function peakRssGrowth<T>(work: () => Promise<T>): Promise<{ result: T | Error; growthMiB: number; ms: number }> {
  Bun.gc(true);
  const base = process.memoryUsage.rss();
  let peak = base;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  const t0 = Date.now();
  let result: T | Error;
  try {
    result = await work();
  } catch (e) {
    result = e instanceof Error ? e : new Error(String(e));
  }
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  return { result, growthMiB: (peak - base) / (1 << 20), ms: Date.now() - t0 };
}
