// Specs for the project-written test guests (ffi/tests/guests/*.S, built into ffi/build/guests): tiny
// guests that run on this host's /dev/kvm, including PVM, for the VMM's tests and benchmarks.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { VmSpec } from "./vm-spec.ts";

export const TEST_GUESTS_DIR = join(import.meta.dir, "../../ffi/build/guests");

/** True when /dev/kvm exists and `guest` (e.g. "counter.bin") is built. */
export function haveTestGuest(guest: string): boolean {
  return existsSync("/dev/kvm") && existsSync(join(TEST_GUESTS_DIR, guest));
}

/** A spec booting test guest `guest` in `runDir` (1 vCPU, 32 MiB, no disks, no rng); `extra` overrides. */
export function testGuestSpec(runDir: string, guest: string | null, extra: Partial<VmSpec> = {}): VmSpec {
  return {
    id: "test",
    runDir,
    consolePath: join(runDir, "console.log"),
    exitFile: join(runDir, "exit.json"),
    memMib: 32,
    vcpus: 1,
    kernel: "",
    cmdline: "",
    ...(guest ? { testGuest: join(TEST_GUESTS_DIR, guest) } : {}),
    disks: [],
    rng: false,
    ...extra,
  };
}
