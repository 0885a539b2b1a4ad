// Reads the vmm's exit record (docs/architecture.md "Exit record"): one JSON line, written atomically by the vmm.
import { z } from "zod";
import type { VmExit } from "./vm-spec.ts";

const ExitRecord = z.object({
  reason: z.enum(["poweroff", "reboot", "panic", "internal-error", "stopped", "error"]),
  detail: z.string().default(""),
  console_tail: z.string().default(""),
});

/** The exit record at path, or null if there is none (the process was killed from outside, or is still running). */
export async function readExitRecord(path: string): Promise<VmExit | null> {
  const file = Bun.file(path);
  if (!(await file.exists())) return null;
  const parsed = ExitRecord.safeParse(JSON.parse(await file.text()));
  if (!parsed.success) return { reason: "error", detail: `malformed exit record ${path}`, consoleTail: "" };
  return { reason: parsed.data.reason, detail: parsed.data.detail, consoleTail: parsed.data.console_tail };
}
