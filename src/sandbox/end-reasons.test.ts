// Tests the mapping from the vmm's exit record to the sandbox end reason.
import { expect, test } from "bun:test";
import { endReasonOf } from "./end-reasons.ts";
import type { VmExit } from "../machine/vm-driver.ts";

/** An exit record as src/vmm reads it: detail and console tail are empty unless the case sets them. */
const rec = (r: Partial<VmExit> & Pick<VmExit, "reason">): VmExit => ({ detail: "", consoleTail: "", ...r });

test("each exit record reason maps to a sandbox end reason", () => {
  expect(endReasonOf(rec({ reason: "poweroff" }), false).reason).toBe("poweroff");
  expect(endReasonOf(rec({ reason: "reboot" }), false).reason).toBe("reboot");
  expect(endReasonOf(rec({ reason: "panic", detail: "Kernel panic - not syncing" }), false)).toEqual({
    reason: "panic",
    detail: "Kernel panic - not syncing",
  });
  expect(endReasonOf(rec({ reason: "internal-error" }), false).reason).toBe("vmm-error");
  expect(endReasonOf(rec({ reason: "error" }), false).reason).toBe("vmm-error");
  expect(endReasonOf(rec({ reason: "stopped" }), false).reason).toBe("killed");
  const crash = endReasonOf(rec({ reason: "vmm-crash", signal: "SIGKILL" }), false);
  expect(crash.reason).toBe("vmm-crash");
  expect(crash.detail).toContain("SIGKILL");
  expect(endReasonOf(rec({ reason: "vmm-crash", signal: 9 }), true).reason).toBe("oom");
  expect(endReasonOf(rec({ reason: "vmm-crash", signal: 2 }), false).detail).toContain("exit status 2");
});
