// Reads the vmm's exit record (docs/architecture.md "Exit record"): one JSON line the vmm writes into the file it
// created at start, read only through a regular file (no symlink), under a byte cap, through the schema.
import { z } from "zod";
import { readCapped } from "./no-follow.ts";
import type { VmExit } from "./vm-spec.ts";

/** detail and console_tail are a few KiB at most (the vmm's serial tail); anything bigger is not a record. */
export const EXIT_RECORD_MAX_BYTES = 64 * 1024;

const ExitRecord = z.object({
  reason: z.enum(["poweroff", "reboot", "panic", "internal-error", "stopped", "error"]),
  detail: z.string().default(""),
  console_tail: z.string().default(""),
});

/** The exit record at path, or null if there is none (the process was killed from outside, or is still running:
 *  the file is empty until the vmm's end). Anything else is reported as a malformed record, never thrown. */
export async function readExitRecord(path: string): Promise<VmExit | null> {
  let text: string;
  try {
    text = readCapped(path, EXIT_RECORD_MAX_BYTES).toString("utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    return { reason: "error", detail: `unreadable exit record ${path}: ${(e as Error).message}`, consoleTail: "" };
  }
  if (text.trim() === "") return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  const parsed = ExitRecord.safeParse(json);
  if (!parsed.success) return { reason: "error", detail: `malformed exit record ${path}`, consoleTail: "" };
  return { reason: parsed.data.reason, detail: parsed.data.detail, consoleTail: parsed.data.console_tail };
}
