// Tests the hardware-vs-PVM decision on synthetic /proc/cpuinfo and module lists.
import { expect, test } from "bun:test";
import { classifyHost } from "./host-kind.ts";

const cpu = (flags: string) => `processor\t: 0\nflags\t\t: fpu vme de ${flags} sse2\n`;

test("kvm_pvm loaded means PVM even when the CPU has no vmx/svm", () => {
  expect(classifyHost(cpu("hypervisor"), ["kvm_pvm"], true).kind).toBe("pvm");
});
test("a working /dev/kvm without vmx/svm is PVM", () => {
  expect(classifyHost(cpu("hypervisor"), [], true).kind).toBe("pvm");
});
test("vmx or svm with a working /dev/kvm is hardware KVM", () => {
  expect(classifyHost(cpu("vmx ept"), ["kvm_intel"], true)).toMatchObject({ kind: "hardware", cpuVirt: "vmx" });
  expect(classifyHost(cpu("svm npt"), ["kvm_amd"], true)).toMatchObject({ kind: "hardware", cpuVirt: "svm" });
});
test("no working /dev/kvm is none", () => {
  expect(classifyHost(cpu("svm"), [], false).kind).toBe("none");
});
