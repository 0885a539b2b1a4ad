// What kind of KVM this host has: hardware (VMX/SVM) or PVM (kvm_pvm), from /proc and /sys.
import { existsSync, readFileSync } from "node:fs";

export type KvmKind = "hardware" | "pvm" | "none";

export interface HostKindInfo {
  kind: KvmKind;
  /** "vmx" (Intel VT-x) or "svm" (AMD-V) when the CPU advertises it. */
  cpuVirt: "vmx" | "svm" | null;
  /** KVM modules loaded (kvm_intel, kvm_amd, kvm_pvm). */
  modules: string[];
  /** Why the kind was decided, in a few words. */
  reason: string;
}

/** Decides the kind from cpuinfo flags, the loaded modules and whether /dev/kvm works. */
export function classifyHost(cpuinfo: string, modules: string[], kvmWorks: boolean): HostKindInfo {
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/));
  const cpuVirt = flags.has("vmx") ? "vmx" : flags.has("svm") ? "svm" : null;
  if (modules.includes("kvm_pvm")) {
    return { kind: "pvm", cpuVirt, modules, reason: "the kvm_pvm module provides /dev/kvm" };
  }
  if (!kvmWorks) return { kind: "none", cpuVirt, modules, reason: "/dev/kvm does not work" };
  if (cpuVirt) return { kind: "hardware", cpuVirt, modules, reason: `the CPU has ${cpuVirt} and /dev/kvm works` };
  // A working /dev/kvm without VMX/SVM can only be a software KVM such as PVM.
  return { kind: "pvm", cpuVirt, modules, reason: "/dev/kvm works but the CPU has no vmx/svm" };
}

export function hostKindInfo(kvmWorks: boolean, sysModule = "/sys/module"): HostKindInfo {
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // Without /proc the flags are unknown; the module check below still decides PVM.
  }
  const modules = ["kvm_intel", "kvm_amd", "kvm_pvm"].filter((m) => existsSync(`${sysModule}/${m}`));
  return classifyHost(cpuinfo, modules, kvmWorks);
}
