// The TS side of the VMM (docs/architecture.md): spawn/adopt onebox-vmm processes, control them, dial guest vsock.
export { pidAlive, VmProcess } from "./vm-process.ts";
export { dialVsock } from "./vsock-dial.ts";
export { readExitRecord } from "./exit-record.ts";
export { forwardPath, vmmArgs, vsockPath, ctlPath, RUN_FILES } from "./vm-spec.ts";
export type { RestoreTimings, VmExit, VmExitReason, VmSpec, VmStats } from "./vm-spec.ts";
export { takeVmOom } from "./cgroup.ts";
