// The vsock handshake as a broken or taken-over vmm would answer it: only `OK <port>\n` opens the stream, and
// a handshake line is read up to 256 bytes, within the deadline.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flood, listenUnix } from "../util/test-hostile-peer.ts";
import { dialVsock } from "./vsock-dial.ts";

let dir: string;
let srv: Server | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "onebox-vsock-"));
});
afterEach(() => {
  srv?.close();
  srv = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function fakeVmm(answer: (s: Socket) => void): Promise<string> {
  const path = join(dir, "vsock.sock");
  srv = await listenUnix(path, (s) => {
    s.on("error", () => {});
    s.once("data", () => answer(s));
  });
  return path;
}

test("OK <port> opens the stream", async () => {
  const path = await fakeVmm((s) => s.write("OK 1234\n"));
  const sock = await dialVsock(path, 5000, 2000);
  expect(sock.destroyed).toBe(false);
  sock.destroy();
});

test("an OK line that is not `OK <port>` is refused", async () => {
  const path = await fakeVmm((s) => s.write(`OK ${"9".repeat(200)} and more\n`));
  await expect(dialVsock(path, 5000, 2000)).rejects.toThrow("vsock CONNECT 5000 refused");
});

test("a handshake line without a newline is refused at 256 bytes; silence ends at the deadline", async () => {
  const path = await fakeVmm((s) => void flood(s, 64 << 20));
  await expect(dialVsock(path, 5000, 2000)).rejects.toThrow("a line longer than 256 bytes");
  srv?.close();
  rmSync(path, { force: true });
  const quiet = await fakeVmm(() => {});
  await expect(dialVsock(quiet, 5000, 300)).rejects.toThrow("timed out after 300 ms");
});
