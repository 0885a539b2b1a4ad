// Where a sandbox's files are: the one source of its sandbox dir and run dir (both follow from its id).
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../util/config.ts";

export function sandboxPaths(config: Config, id: string) {
  const sandboxDir = join(config.dataDir, "sandboxes", id);
  return {
    sandboxDir,
    runDir: join(config.runRoot, "vms", id),
    layer: join(sandboxDir, "layer.ext4"),
    console: join(sandboxDir, "console.log"),
    exitFile: join(sandboxDir, "exit.json"),
    /** Where a paused sandbox's VM state goes (docs/snapshot.md); its layer stays next to it. */
    pauseDir: join(sandboxDir, "paused"),
    /** The template snapshot VM dir this sandbox was restored from: its pause diffs lie over it. */
    baseFile: join(sandboxDir, "base"),
  };
}

/** In pauseDir instead of a VM state: a filesystem-only pause (E2B's keepMemory: false), which the resume boots afresh
 *  from the layer. Written once the VM has ended, so it also says the layer is final. */
export const FILESYSTEM_ONLY = "filesystem-only";

/** Whether a paused sandbox has something complete to resume from: a snapshot (the vmm renames `state` in last) or
 *  a filesystem-only pause's layer. */
export function isParked(config: Config, id: string): boolean {
  const dir = sandboxPaths(config, id).pauseDir;
  return existsSync(join(dir, "state")) || existsSync(join(dir, FILESYSTEM_ONLY));
}
