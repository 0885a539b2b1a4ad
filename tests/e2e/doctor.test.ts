// e2e: `onebox doctor` in the test host (emulated AMD-V) reports hardware KVM, a working /dev/kvm
// and the provisioned Debian kernel, and exits 0; the unit tests cover the PVM side.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IN_TESTHOST, REPO } from "./lib/harness.ts";

describe.skipIf(!IN_TESTHOST)("onebox doctor", () => {
  test("hardware KVM (svm), API 12, the provisioned kernel; exit 0", () => {
    const kernelDir = process.env.ONEBOX_TEST_KERNEL_DIR!;
    const meta = JSON.parse(readFileSync(join(kernelDir, "kernel.json"), "utf8")) as { version: string };
    const r = Bun.spawnSync(["bun", "src/main.ts", "doctor", "--json", "--data-dir", join(kernelDir, "..", "..")], {
      cwd: REPO,
      env: { ...process.env, ONEBOX_KERNEL: "", ONEBOX_PVM_KERNEL: "" }, // empty = unset: the default kernel
    });
    const report = JSON.parse(r.stdout.toString());
    expect(report.kvm).toMatchObject({ ok: true, apiVersion: 12, createVmError: null, createVcpuError: null });
    expect(report.host).toMatchObject({ kind: "hardware", cpuVirt: "svm" });
    expect(report.kernel).toMatchObject({ source: "default", format: "bzImage", version: meta.version });
    expect(report.problems).toEqual([]);
    expect(r.exitCode).toBe(0);
  }, 60_000);
});
