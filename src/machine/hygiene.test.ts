// The clone-hygiene message as the guest's control parser expects it (guest/protocol.ts), and the daemon's
// bounded, checked read of the guest's reply.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ONEBOX_VSOCK_CONTROL_PORT } from "../../guest/protocol.ts";
import { flood, listenUnix, peakRssGrowth } from "../util/test-hostile-peer.ts";
import { GUEST_CONTROL_REPLY_MAX, guestStatus, HYGIENE_ENTROPY_BYTES, hygieneLine, sendHygiene } from "./hygiene.ts";

test("hygiene line: one JSON object with an exact integer time_ns, fresh entropy, id and hostname", () => {
  const before = BigInt(Date.now()) * 1_000_000n;
  const a = hygieneLine({ id: "sbx-1", hostname: "clone1" });
  const b = hygieneLine({ id: "sbx-2" });
  expect(a.endsWith("}\n")).toBe(true);
  const ta = BigInt(/"time_ns":(\d+)\}/.exec(a)?.[1] ?? "0");
  expect(ta >= before && ta % 1_000_000n === 0n).toBe(true); // exact: not rounded through a double
  const ja = JSON.parse(a);
  expect(ja.op).toBe("hygiene");
  expect(ja.id).toBe("sbx-1");
  expect(ja.hostname).toBe("clone1");
  expect(Buffer.from(ja.entropy, "base64").length).toBe(HYGIENE_ENTROPY_BYTES);
  expect(JSON.parse(b).entropy).not.toBe(ja.entropy);
  expect(JSON.parse(b).hostname).toBeUndefined();
});

// The attacks: a guest (after a resume its memory is the tenant's) that answers clone hygiene with an endless line,
// or not at all. A fake guest stands behind a Unix socket that speaks the vmm's hybrid vsock handshake.
describe("a hostile guest on the control channel", () => {
  let dir: string;
  let srv: Server | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "onebox-hygiene-"));
  });
  afterEach(() => {
    srv?.close();
    srv = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** A vmm vsock socket whose guest answers the control request with `reply(sock)`. */
  async function fakeGuest(reply: (s: Socket) => void): Promise<string> {
    const path = join(dir, "vsock.sock");
    srv = await listenUnix(path, (s) => {
      let head = "";
      s.on("error", () => {});
      s.on("data", function onData(c: Buffer) {
        head += c.toString("latin1");
        if (head === `CONNECT ${ONEBOX_VSOCK_CONTROL_PORT}\n`) {
          s.write("OK 1000\n");
        } else if (head.includes("}\n")) {
          s.off("data", onData);
          reply(s);
        }
      });
    });
    return path;
  }

  test("400 MiB without a newline: refused at 4 KiB, daemon RSS grows < 64 MiB", async () => {
    let sent: Promise<number> = Promise.resolve(0);
    const vsock = await fakeGuest((s) => void (sent = flood(s, 400 << 20)));
    const { result, growthMiB, ms } = await peakRssGrowth(() => sendHygiene(vsock, { id: "sbx-1", timeoutMs: 10_000 }));
    console.log(`hygiene flood: ${growthMiB.toFixed(1)} MiB RSS growth, ${ms} ms, guest wrote ${(await sent) >> 20} MiB before the hang-up`);
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toContain(`guest control reply: a line longer than ${GUEST_CONTROL_REPLY_MAX} bytes`);
    expect(growthMiB).toBeLessThan(64);
    expect(ms).toBeLessThan(5000);
  }, 30_000);

  test("a reply that never comes (bytes trickle, no newline): the deadline ends the wait", async () => {
    const vsock = await fakeGuest((s) => {
      const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write("x")), 50);
    });
    const { result, ms } = await peakRssGrowth(() => sendHygiene(vsock, { timeoutMs: 1500 }));
    expect((result as Error).message).toMatch(/no reply within \d+ ms/);
    expect(ms).toBeLessThan(4000);
  }, 10_000);

  test("a reply line that is not the protocol's shape is refused (schema), not taken as success", async () => {
    const vsock = await fakeGuest((s) => s.write('{"ok":"yes","error":{"x":1}}\n'));
    await expect(sendHygiene(vsock, { timeoutMs: 2000 })).rejects.toThrow("guest control: malformed reply");
    const vsock2 = join(dir, "vsock.sock");
    srv?.close();
    srv = undefined;
    rmSync(vsock2, { force: true });
    await fakeGuest((s) => s.write('{"ok":true,"id":"x","random":"zz","time_ns":1}\n'));
    await expect(guestStatus(vsock2, 2000)).rejects.toThrow("guest status: malformed reply");
  }, 10_000);
});
