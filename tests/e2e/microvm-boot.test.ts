// e2e: a real Debian kernel boots under onebox-vmm to onebox-init's marker; power-off, guest panic
// and a killed VM process each end with the documented exit reason (docs/architecture.md).
import { afterEach, describe, expect, test } from "bun:test";
import { ONEBOX_MARKER_BOOTED } from "../../guest/protocol.ts";
import { BOOT_TIMEOUT_MS, IN_TESTHOST, bootToMarker, startTestVm, type TestVm } from "./lib/harness.ts";

const T = BOOT_TIMEOUT_MS * 2;
let vms: TestVm[] = [];
afterEach(async () => {
  await Promise.all(vms.map((v) => v.dispose()));
  vms = [];
});

describe.skipIf(!IN_TESTHOST)("microVM lifecycle", () => {
  test("boots to the init marker and powers off cleanly", async () => {
    const t = await startTestVm({ test: "boot" });
    vms.push(t);
    await t.waitConsole(ONEBOX_MARKER_BOOTED);
    const exit = await t.vm.exited;
    expect(exit.reason).toBe("poweroff");
    expect(t.console()).toContain(ONEBOX_MARKER_BOOTED);
  }, T);

  test("a guest kernel panic ends with reason panic and the console tail", async () => {
    const t = await startTestVm({ test: "panic" });
    vms.push(t);
    const exit = await t.vm.exited;
    expect(exit.reason).toBe("panic");
    // Our panic (sysrq 'c' from onebox-init's panic mode), not some other one during boot.
    expect(t.console()).toContain(ONEBOX_MARKER_BOOTED);
    expect(exit.consoleTail).toContain("Kernel panic - not syncing: sysrq triggered crash");
  }, T);

  test("SIGKILL of the VM process is vmm-crash, and the test process carries on", async () => {
    const t = await bootToMarker({ test: "echo" });
    vms.push(t);
    process.kill(t.vm.pid, "SIGKILL");
    const exit = await t.vm.exited;
    expect(exit.reason).toBe("vmm-crash");
    expect(String(exit.signal)).toMatch(/SIGKILL|^9$/);
    // Unharmed: this process still spawns and boots another VM to its marker.
    const again = await bootToMarker({ test: "boot" });
    vms.push(again);
    expect((await again.vm.exited).reason).toBe("poweroff");
  }, T * 2);
});
