// Tests the mapping from the vmm's exit record to the sandbox end reason.
import { expect, test } from "bun:test";
import { endReasonOf } from "./end-reasons.ts";

test("each exit record reason maps to a sandbox end reason", () => {
  expect(endReasonOf({ reason: "poweroff" }, false).reason).toBe("poweroff");
  expect(endReasonOf({ reason: "reboot" }, false).reason).toBe("reboot");
  expect(endReasonOf({ reason: "panic", detail: "Kernel panic - not syncing" }, false)).toEqual({
    reason: "panic",
    detail: "Kernel panic - not syncing",
  });
  expect(endReasonOf({ reason: "internal-error" }, false).reason).toBe("vmm-error");
  expect(endReasonOf({ reason: "error" }, false).reason).toBe("vmm-error");
  expect(endReasonOf({ reason: "stopped" }, false).reason).toBe("killed");
  const crash = endReasonOf({ reason: "vmm-crash", signal: "SIGKILL" }, false);
  expect(crash.reason).toBe("vmm-crash");
  expect(crash.detail).toContain("SIGKILL");
  expect(endReasonOf({ reason: "vmm-crash", signal: 9 }, true).reason).toBe("oom");
  expect(endReasonOf({ reason: "vmm-crash", signal: 2 }, false).detail).toContain("exit status 2");
});
