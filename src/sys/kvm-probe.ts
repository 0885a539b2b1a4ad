// Probes /dev/kvm through libonebox (open, KVM_GET_API_VERSION, KVM_CREATE_VM/VCPU, capabilities).
import { ptr } from "bun:ffi";
import { libOnebox } from "./libonebox.ts";

/** Slot layout of ffi/lib/kvm_probe.h (enum probe_slot). */
const SLOT = { openErrno: 0, apiVersion: 1, createVmErrno: 2, createVcpuErrno: 3, vcpuMmapSize: 4, capFirst: 5 } as const;
/** Same order as probe_caps[] in ffi/lib/kvm_probe.c. */
const CAPS = [
  "KVM_CAP_USER_MEMORY", "KVM_CAP_IRQCHIP", "KVM_CAP_SPLIT_IRQCHIP", "KVM_CAP_IMMEDIATE_EXIT",
  "KVM_CAP_NR_VCPUS", "KVM_CAP_MAX_VCPUS", "KVM_CAP_IRQFD", "KVM_CAP_IOEVENTFD",
] as const;
const NSLOTS = SLOT.capFirst + CAPS.length;

/** The API version every KVM since Linux 2.6.22 reports (Documentation/virt/kvm/api.rst). */
export const KVM_API_VERSION = 12;

export interface KvmProbe {
  device: string;
  /** null when the device opened, else the errno name (ENOENT, EACCES, ...). */
  openError: string | null;
  apiVersion: number | null;
  createVmError: string | null;
  createVcpuError: string | null;
  vcpuMmapSize: number | null;
  caps: Partial<Record<(typeof CAPS)[number], number>>;
  /** Everything a sandbox needs from this device worked. */
  ok: boolean;
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 6: "ENXIO", 12: "ENOMEM", 13: "EACCES", 16: "EBUSY", 19: "ENODEV",
  22: "EINVAL", 24: "EMFILE", 25: "ENOTTY", 95: "EOPNOTSUPP",
};
function errnoName(e: number): string {
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}

/** Opens `device` and tries what every sandbox does first; never throws for a missing device. */
export async function probeKvm(device = "/dev/kvm"): Promise<KvmProbe> {
  const lib = await libOnebox();
  const out = new Int32Array(NSLOTS);
  const rc = lib.onebox_kvm_probe(ptr(Buffer.from(`${device}\0`)), ptr(out), NSLOTS);
  if (rc !== 0) throw new Error(`onebox_kvm_probe failed (${rc}): libonebox and src/sys disagree on the slot layout`);
  const at = (i: number): number => out[i] ?? -1;
  const errOf = (v: number): string | null => (v === 0 ? null : v < 0 ? "not tried" : errnoName(v));
  const opened = at(SLOT.openErrno) === 0;
  const caps: KvmProbe["caps"] = {};
  if (opened) CAPS.forEach((name, i) => (caps[name] = at(SLOT.capFirst + i)));
  const apiVersion = opened && at(SLOT.apiVersion) >= 0 ? at(SLOT.apiVersion) : null;
  const probe: KvmProbe = {
    device,
    openError: errOf(at(SLOT.openErrno)),
    apiVersion,
    createVmError: opened ? errOf(at(SLOT.createVmErrno)) : "not tried",
    createVcpuError: opened && at(SLOT.createVmErrno) === 0 ? errOf(at(SLOT.createVcpuErrno)) : "not tried",
    vcpuMmapSize: opened && at(SLOT.vcpuMmapSize) > 0 ? at(SLOT.vcpuMmapSize) : null,
    caps,
    ok: false,
  };
  probe.ok = opened && apiVersion === KVM_API_VERSION && probe.createVmError === null && probe.createVcpuError === null;
  return probe;
}
