// Clone hygiene (docs/snapshot.md): after a restore, give the guest the host's wall clock, fresh entropy and its own
// identity over the guest control channel (vsock ONEBOX_VSOCK_CONTROL_PORT, JSON lines, guest/protocol.ts).
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import { ONEBOX_VSOCK_CONTROL_PORT, type ControlRequest, type ControlStatus } from "../../guest/protocol.ts";
import { z } from "zod";
import { LineReader } from "../util/bounded-read.ts";
import { dialVsock } from "../vmm/index.ts";

/** Bytes of host CSPRNG output sent per clone (the guest credits them in full and reseeds its CRNG). */
export const HYGIENE_ENTROPY_BYTES = 64;

export interface HygieneOptions {
  id?: string; // [A-Za-z0-9_-]{1,64}: written to /run/onebox/sandbox-id
  hostname?: string;
  timeoutMs?: number;
}

/** Largest reply line accepted from the guest (the status reply is ~150 bytes): past it the daemon stops
 *  reading and fails the exchange; guest memory is the tenant's after a resume, so the reply is hostile input. */
export const GUEST_CONTROL_REPLY_MAX = 4096;

/** A reply line as guest/protocol.ts defines it: `{"ok":true,...}` or `{"ok":false,"error":"..."}`. */
const ControlReplySchema = z.union([
  z.object({ ok: z.literal(true) }).passthrough(),
  z.object({ ok: z.literal(false), error: z.string().max(1024).default("no reason") }),
]);
const ControlStatusSchema = z.object({
  ok: z.literal(true),
  id: z.string().max(64),
  random: z.string().regex(/^[0-9a-f]{1,64}$/),
  time_ns: z.number().nonnegative(), // ns since the epoch: past 2^53, so not a "safe" integer
});
type ControlReplyLine = z.infer<typeof ControlReplySchema>;

/** One request line, one reply line (at most GUEST_CONTROL_REPLY_MAX bytes, within timeoutMs). time_ns goes
 *  out as a JSON integer built from a bigint: ns since the epoch do not fit in a double exactly. */
async function exchange(sock: Socket, line: string, timeoutMs: number): Promise<ControlReplyLine> {
  return new Promise((resolve, reject) => {
    const lines = new LineReader(GUEST_CONTROL_REPLY_MAX, "guest control reply");
    const timer = setTimeout(() => done(new Error(`guest control: no reply within ${timeoutMs} ms`)), timeoutMs);
    function done(err: Error | null, v?: ControlReplyLine): void {
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("close", onClose);
      if (err) {
        sock.destroy(); // stop reading whatever else the guest sends
        reject(err);
      } else resolve(v ?? { ok: false, error: "no reply" });
    }
    function onData(c: Buffer): void {
      try {
        const [first] = lines.push(c, 1);
        if (first === undefined) return;
        const r = ControlReplySchema.safeParse(JSON.parse(first.toString("utf8")));
        if (!r.success) return done(new Error(`guest control: malformed reply (${r.error.issues[0]?.message ?? "schema"})`));
        done(null, r.data);
      } catch (e) {
        done(e instanceof Error ? e : new Error(String(e)));
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

/** The hygiene message for this moment: wall clock now, fresh entropy, the clone's id and hostname (initHygiene's
 *  fields as onebox-init's control channel takes them). */
export function hygieneLine(o: HygieneOptions): string {
  const h = initHygiene(o);
  const msg: Extract<ControlRequest, { op: "hygiene" }> = { op: "hygiene", entropy: h.entropy };
  if (h.id) msg.id = h.id;
  if (h.hostname) msg.hostname = h.hostname;
  const body = JSON.stringify(msg);
  return `${body.slice(0, -1)},"time_ns":${h.timeNs}}\n`;
}

/** The same hygiene as fields of the agent's POST /init (guest/agent/clone-hygiene.ts): one exchange gives a restored
 *  guest its clock, entropy, identity, token and env vars (issue 18). time as a decimal string: ns since the epoch
 *  do not fit a JSON number exactly. */
export interface InitHygiene {
  timeNs: string;
  entropy: string;
  id?: string;
  hostname?: string;
}

export function initHygiene(o: HygieneOptions): InitHygiene {
  const h: InitHygiene = { timeNs: String(BigInt(Date.now()) * 1_000_000n), entropy: randomBytes(HYGIENE_ENTROPY_BYTES).toString("base64") };
  if (o.id) h.id = o.id;
  if (o.hostname) h.hostname = o.hostname;
  return h;
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
    let r: ControlReplyLine;
    try {
      r = await exchange(sock, hygieneLine(o), Math.max(1000, end - Date.now()));
    } catch (e) {
      if (Date.now() > end || !(e instanceof Error) || !e.message.includes("closed before the reply")) throw e;
      await Bun.sleep(20);
      continue;
    } finally {
      sock.destroy();
    }
    if (!r.ok) throw new Error(`guest refused clone hygiene: ${r.error}`);
    return;
  }
}

/** Has the guest write every dirty page to its disks (sync(2)) and waits for its reply: after it the layer holds
 *  the guest's files as they are, without its memory (a filesystem-only pause). */
export async function syncGuestDisks(vsockPath: string, timeoutMs = 30_000): Promise<void> {
  const sock = await dialControl(vsockPath, timeoutMs);
  try {
    const r = await exchange(sock, `${JSON.stringify({ op: "sync" } satisfies ControlRequest)}\n`, timeoutMs);
    if (!r.ok) throw new Error(`guest sync failed: ${r.error}`);
  } finally {
    sock.destroy();
  }
}

/** Asks the guest what it is now (id, fresh random bytes, clock): how a test sees that hygiene took effect. */
export async function guestStatus(vsockPath: string, timeoutMs = 10_000): Promise<ControlStatus> {
  const sock = await dialControl(vsockPath, timeoutMs);
  try {
    const r = await exchange(sock, `${JSON.stringify({ op: "status" } satisfies ControlRequest)}\n`, timeoutMs);
    if (!r.ok) throw new Error(`guest status failed: ${r.error}`);
    const st = ControlStatusSchema.safeParse(r);
    if (!st.success) throw new Error(`guest status: malformed reply (${st.error.issues[0]?.message ?? "schema"})`);
    return st.data;
  } finally {
    sock.destroy();
  }
}
