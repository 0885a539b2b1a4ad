// Tests the KVM probe through the real libonebox.so, on this machine's /dev/kvm.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { probeKvm, KVM_API_VERSION } from "./kvm-probe.ts";
import { hostKindInfo } from "./host-kind.ts";

describe("probeKvm", () => {
  test.if(existsSync("/dev/kvm"))("opens /dev/kvm, reads API 12, creates a VM and a vCPU", async () => {
    const p = await probeKvm();
    expect(p.openError).toBeNull();
    expect(p.apiVersion).toBe(KVM_API_VERSION);
    expect(p.createVmError).toBeNull();
    expect(p.createVcpuError).toBeNull();
    expect(p.vcpuMmapSize).toBeGreaterThanOrEqual(4096);
    expect(p.caps.KVM_CAP_USER_MEMORY).toBe(1);
    expect(p.ok).toBe(true);
  });

  test.if(existsSync("/dev/kvm"))("classifies this host as PVM or hardware KVM, never none", async () => {
    const info = hostKindInfo((await probeKvm()).ok);
    expect(["pvm", "hardware"]).toContain(info.kind);
    // The development and CI machines are PVM hosts (DESIGN.md §3); the test host is hardware-style.
    if (existsSync("/sys/module/kvm_pvm")) expect(info.kind).toBe("pvm");
  });

  test("reports a missing device as ENOENT without throwing", async () => {
    const p = await probeKvm("/dev/onebox-no-such-kvm");
    expect(p.openError).toBe("ENOENT");
    expect(p.apiVersion).toBeNull();
    expect(p.ok).toBe(false);
  });

  test("a device that is not KVM fails the API version ioctl", async () => {
    const p = await probeKvm("/dev/null");
    expect(p.openError).toBeNull();
    expect(p.apiVersion).toBeNull();
    expect(p.ok).toBe(false);
  });
});
