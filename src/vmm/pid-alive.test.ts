// pidAlive decides when an adopted vmm (not our child) has ended: a zombie counts as ended.
import { expect, test } from "bun:test";
import { pidAlive } from "./vm-process.ts";

test("a live process is alive, a zombie and a reaped pid are not", async () => {
  // `true &` ends at once; its parent then execs sleep, which never reaps it: a zombie for 3 s.
  const sh = Bun.spawn(["sh", "-c", "true & echo $!; exec sleep 3"], { stdout: "pipe" });
  const reader = sh.stdout.getReader();
  const { value } = await reader.read();
  const zombie = Number(new TextDecoder().decode(value).trim());
  expect(zombie).toBeGreaterThan(0);
  await Bun.sleep(200);
  expect(pidAlive(sh.pid)).toBe(true);
  expect(pidAlive(zombie)).toBe(false);
  sh.kill();
  await sh.exited;
  expect(pidAlive(sh.pid)).toBe(false);
});
