// Reading a console log's end must be bounded and must not block or follow links: the file lives next to
// what a jailed VMM writes. The attacks: a FIFO (would block the daemon's event loop), a symlink to a host file.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tailFile } from "./tail-file.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "onebox-tail-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("the last maxBytes, cut at a line boundary; a missing file is empty", () => {
  const p = join(dir, "console.log");
  writeFileSync(p, "first line\nsecond line\nthird\n");
  expect(tailFile(p, 14)).toBe("third\n");
  expect(tailFile(p)).toBe("first line\nsecond line\nthird\n");
  expect(tailFile(join(dir, "none"))).toBe("");
});

test("a symlink in place of the console log is not followed", () => {
  const secret = join(dir, "secret");
  writeFileSync(secret, "root:secret-hash\n");
  symlinkSync(secret, join(dir, "console.log"));
  expect(tailFile(join(dir, "console.log"))).toBe("");
});

test("a FIFO in place of the console log returns at once instead of blocking the daemon", async () => {
  const fifo = join(dir, "console.log");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  // In a child: a blocking open would hang this test process itself, past any test timeout.
  const p = Bun.spawn(["bun", "-e", `import { tailFile } from ${JSON.stringify(join(import.meta.dir, "tail-file.ts"))}; console.log(JSON.stringify(tailFile(${JSON.stringify(fifo)})))`], {
    stdout: "pipe",
  });
  const r = await Promise.race([p.exited, Bun.sleep(5000).then(() => "blocked")]);
  if (r === "blocked") p.kill(9);
  expect(r).toBe(0);
  expect((await new Response(p.stdout).text()).trim()).toBe('""');
}, 10_000);
