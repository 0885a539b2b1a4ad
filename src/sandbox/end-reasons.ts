// Maps how a VM process ended (its exit record, docs/architecture.md) to the sandbox's end reason.
import { takeVmOom } from "../vmm/index.ts";
import type { EndReason } from "./lifecycle.ts";
import type { VmExit } from "../machine/vm-driver.ts";

export function endReasonOf(exit: VmExit, oomKilled: boolean): { reason: EndReason; detail: string } {
  // src/vmm puts the signal's name there, or the exit status when the process exited by itself.
  const how = exit.signal === undefined ? "" : typeof exit.signal === "number" ? `exit status ${exit.signal}` : `signal ${exit.signal}`;
  const detail = [exit.detail, how].filter(Boolean).join("; ");
  switch (exit.reason) {
    case "poweroff":
      return { reason: "poweroff", detail: detail || "the guest powered off" };
    case "reboot":
      return { reason: "reboot", detail: detail || "the guest rebooted (sandboxes do not restart)" };
    case "panic":
      return { reason: "panic", detail: detail || "guest kernel panic; see the console log" };
    case "internal-error":
    case "error":
      return { reason: "vmm-error", detail: detail || exit.reason };
    case "stopped":
      return { reason: "killed", detail: detail || "stopped" };
    default:
      if (oomKilled) return { reason: "oom", detail: detail || "killed by the host OOM killer" };
      return { reason: "vmm-crash", detail: detail || `the VM process died (${exit.reason})` };
  }
}

/** Whether the OOM killer took the VM process `pid`: its own cgroup's oom_kill counter when it had one (exact:
 *  nothing else runs there, read by src/vmm before the cgroup is removed), else the kernel log (best effort:
 *  needs root to read dmesg, and the ring buffer may have moved on). */
export async function wasOomKilled(pid: number): Promise<boolean> {
  const fromCgroup = takeVmOom(pid);
  if (fromCgroup !== undefined) return fromCgroup;
  try {
    const p = Bun.spawn(["dmesg"], { stdout: "pipe", stderr: "ignore" });
    const text = await new Response(p.stdout).text();
    return new RegExp(`(Killed process|oom-kill:.*pid=)${pid}\\b`).test(text);
  } catch {
    return false;
  }
}
