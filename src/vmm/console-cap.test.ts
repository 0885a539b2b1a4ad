// The attack on the host disk through the serial console: a guest prints ~650 KiB; the vmm keeps its console log
// under --console-max with the newest output, and the daemon's console tail still reads it.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tailFile } from "../util/tail-file.ts";
import { haveTestGuest, testGuestSpec } from "./test-guest.ts";
import { VmProcess } from "./vm-process.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.skipIf(!haveTestGuest("console_flood.bin"))("a guest flooding its console leaves a log under the cap that ends with its last line", async () => {
  const runDir = mkdtempSync(join(tmpdir(), "vmm-console-"));
  dirs.push(runDir);
  const cap = 64 * 1024;
  const spec = testGuestSpec(runDir, "console_flood.bin", { consoleMaxBytes: cap });
  const exit = await (await VmProcess.spawn(spec)).exited;
  expect(exit.reason).toBe("poweroff");
  const size = statSync(spec.consolePath).size;
  console.log(`console log after a ~650 KiB flood: ${size} bytes (cap ${cap})`);
  expect(size).toBeLessThanOrEqual(cap);
  expect(size).toBeGreaterThan(cap / 4);
  const tail = tailFile(spec.consolePath, 4096);
  expect(tail.endsWith("the last line of the flood\n")).toBe(true);
  expect(tail.split("\n")[0]).toStartWith("flood: the guest prints"); // whole lines
  expect(exit.consoleTail).toContain("the last line of the flood");
}, 60_000);
