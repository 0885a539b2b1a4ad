// Can this host run sandboxes? Names the problem and its fix, for create's 503 (and the CLI).
import { existsSync } from "node:fs";
import { hostKindInfo } from "../sys/host-kind.ts";
import type { Config } from "../util/config.ts";

export type HostKind = "kvm" | "pvm" | "none";

/** The same classification as `onebox doctor` (src/sys/host-kind.ts); kvm_pvm means PVM (DESIGN.md §3). */
export function hostKind(): HostKind {
  if (!existsSync("/dev/kvm")) return "none";
  const { kind } = hostKindInfo(true);
  return kind === "hardware" ? "kvm" : kind;
}

/** Null when sandboxes can boot here, else what is wrong and what to do. */
export function hostProblem(config: Config, kind: HostKind = hostKind()): string | null {
  if (kind === "none") {
    return "this host has no /dev/kvm: load kvm_intel or kvm_amd (or run on a host with virtualization), then restart onebox";
  }
  if (kind === "pvm" && !config.pvmKernel) {
    return (
      "this host's /dev/kvm is PVM (kvm_pvm), where a stock Linux kernel does not boot: build a guest kernel " +
      "with CONFIG_PVM_GUEST=y and CONFIG_X86_PIE=y and start `onebox serve --pvm-kernel PATH` (see `onebox doctor`)"
    );
  }
  if (kind === "pvm" && config.pvmKernel && !existsSync(config.pvmKernel)) {
    return `the PVM guest kernel ${config.pvmKernel} does not exist: fix --pvm-kernel`;
  }
  return null;
}
