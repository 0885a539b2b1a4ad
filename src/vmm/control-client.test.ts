// The daemon's side of the vmm control socket against a vmm that breaks the protocol (a taken-over vmm is the
// guest's): a line over 4096 bytes, or an endless one, closes the connection instead of being buffered.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flood, listenUnix, peakRssGrowth } from "../util/test-hostile-peer.ts";
import { CONTROL_LINE_MAX, ControlClient } from "./control-client.ts";

let dir: string;
let srv: Server | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "onebox-ctl-"));
});
afterEach(() => {
  srv?.close();
  srv = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A vmm control socket that answers each request line with `answer(sock, line)`. */
async function fakeVmm(answer: (s: Socket, line: string) => void): Promise<string> {
  const path = join(dir, "ctl.sock");
  srv = await listenUnix(path, (s) => {
    s.on("error", () => {});
    let buf = "";
    s.on("data", (c: Buffer) => {
      buf += c.toString("latin1");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        answer(s, buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
  });
  return path;
}

test("a reply line of 4097+ bytes is refused and closes the connection", async () => {
  const path = await fakeVmm((s) => s.write(`ok x=${"a".repeat(CONTROL_LINE_MAX)}\n`));
  const c = await ControlClient.connect(path, () => {});
  await expect(c.request("stats", 2000)).rejects.toThrow(`vmm control socket: a line longer than ${CONTROL_LINE_MAX} bytes`);
  expect(c.closed).toBe(true);
});

test("an event line of 400 MiB without a newline: refused, daemon RSS grows < 64 MiB", async () => {
  const path = await fakeVmm(() => {});
  let sent: Promise<number> = Promise.resolve(0);
  srv?.on("connection", (s: Socket) => {
    s.write("event ");
    sent = flood(s, 400 << 20);
  });
  const c = await ControlClient.connect(path, () => {});
  const { growthMiB, ms } = await peakRssGrowth(() => c.waitClosed());
  console.log(`control flood: ${growthMiB.toFixed(1)} MiB RSS growth, ${ms} ms, vmm wrote ${(await sent) >> 20} MiB`);
  expect(c.closed).toBe(true);
  expect(growthMiB).toBeLessThan(64);
}, 30_000);

test("lines at the limit, split over chunks, still work; events and replies keep their order", async () => {
  const long = "b".repeat(CONTROL_LINE_MAX - "ok v=".length);
  const path = await fakeVmm((s, line) => {
    const reply = `event ready n=1\nok v=${line === "long" ? long : line}\n`;
    s.write(reply.slice(0, 7));
    setTimeout(() => s.write(reply.slice(7)), 5);
  });
  const events: string[] = [];
  const c = await ControlClient.connect(path, (name, f) => events.push(`${name}:${f.n}`));
  expect((await c.request("one")).v).toBe("one");
  expect((await c.request("long")).v).toBe(long);
  expect(events).toEqual(["ready:1", "ready:1"]);
  c.close();
});
