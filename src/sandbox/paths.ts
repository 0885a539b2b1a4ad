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

/** Whether a paused sandbox has a complete snapshot to resume from (the vmm renames `state` in last). */
export function isParked(config: Config, id: string): boolean {
  return existsSync(join(sandboxPaths(config, id).pauseDir, "state"));
}
