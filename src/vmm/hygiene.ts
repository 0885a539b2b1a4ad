// Clone hygiene (docs/snapshot.md): after a restore, give the guest the host's wall clock, fresh entropy and its own
// identity over the guest control channel (vsock ONEBOX_VSOCK_CONTROL_PORT, JSON lines, guest/protocol.ts).
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { ONEBOX_VSOCK_CONTROL_PORT, type ControlRequest, type ControlStatus } from "../../guest/protocol.ts";
import { dialVsock } from "./vsock-dial.ts";

/** Bytes of host CSPRNG output sent per clone (the guest credits them in full and reseeds its CRNG). */
export const HYGIENE_ENTROPY_BYTES = 64;

export interface HygieneOptions {
  id?: string; // [A-Za-z0-9_-]{1,64}: written to /run/onebox/sandbox-id
  hostname?: string;
  timeoutMs?: number;
}

/** One request line, one reply line. time_ns goes out as a JSON integer built from a bigint: ns since the epoch
 *  do not fit in a double exactly. */
async function exchange(sock: Socket, line: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => done(new Error(`guest control: no reply within ${timeoutMs} ms`)), timeoutMs);
    function done(err: Error | null, v?: Record<string, unknown>): void {
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("close", onClose);
      if (err) reject(err);
      else resolve(v ?? {});
    }
    function onData(c: Buffer): void {
      buf += c.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      try {
        done(null, JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      } catch (e) {
        done(e as Error);
      }
    }
    function onClose(): void {
      done(new Error("guest control: connection closed before the reply"));
    }
    sock.on("data", onData);
    sock.on("close", onClose);
    sock.write(line);
  });
}

/** Dials the guest control channel, retrying while it is not listening yet (a just-restored guest is). */
async function dialControl(vsockPath: string, timeoutMs: number): Promise<Socket> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await dialVsock(vsockPath, ONEBOX_VSOCK_CONTROL_PORT, Math.max(1000, end - Date.now()));
    } catch (e) {
      if (Date.now() > end) throw e;
      await Bun.sleep(50);
    }
  }
}

/** The hygiene message for this moment: wall clock now, fresh entropy, the clone's id and hostname. */
export function hygieneLine(o: HygieneOptions): string {
  const timeNs = BigInt(Date.now()) * 1_000_000n;
  const msg: Extract<ControlRequest, { op: "hygiene" }> = {
    op: "hygiene",
    entropy: randomBytes(HYGIENE_ENTROPY_BYTES).toString("base64"),
  };
  if (o.id) msg.id = o.id;
  if (o.hostname) msg.hostname = o.hostname;
  const body = JSON.stringify(msg);
  return `${body.slice(0, -1)},"time_ns":${timeNs}}\n`;
}

/** Sends clone hygiene to a restored guest; rejects with the guest's error if it refused.
 *  The vmm holds a connection made just after the restore until the guest handled the vsock
 *  TRANSPORT_RESET event (docs/virtio.md "the reset hold"); if that hold timed out, or a guest
 *  reset the connection anyway, it dials again. The message is idempotent. */
export async function sendHygiene(vsockPath: string, o: HygieneOptions = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const sock = await dialControl(vsockPath, Math.max(1000, end - Date.now()));
    let r: Record<string, unknown>;
    try {
      r = await exchange(sock, hygieneLine(o), Math.max(1000, end - Date.now()));
    } catch (e) {
      if (Date.now() > end || !(e instanceof Error) || !e.message.includes("closed before the reply")) throw e;
      await Bun.sleep(20);
      continue;
    } finally {
      sock.destroy();
    }
    if (r.ok !== true) throw new Error(`guest refused clone hygiene: ${String(r.error ?? "no reason")}`);
    return;
  }
}

/** Asks the guest what it is now (id, fresh random bytes, clock): how a test sees that hygiene took effect. */
export async function guestStatus(vsockPath: string, timeoutMs = 10_000): Promise<ControlStatus> {
  const sock = await dialControl(vsockPath, timeoutMs);
  try {
    const r = await exchange(sock, `${JSON.stringify({ op: "status" } satisfies ControlRequest)}\n`, timeoutMs);
    if (r.ok !== true) throw new Error(`guest status failed: ${String(r.error ?? "no reason")}`);
    return r as unknown as ControlStatus;
  } finally {
    sock.destroy();
  }
}
