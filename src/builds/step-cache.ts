// The build step cache on disk: $DATA/builds/cache/<step hash>/ holds the build VM's disk layer as it was after
// that step (a reflink or sparse copy) and the build's env, workdir and user at that point; $DATA/builds/images/
// <base hash>/ holds an image's root filesystem made by the OCI path. An entry appears complete or not at all.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

export const BuildState = z.object({
  /** The root image this layer lies over: a cached layer is only used with the same one. */
  rootfs: z.string(),
  /** That file's identity when the layer was made (a re-pulled image replaces the file at the same path). */
  rootfsId: z.string().optional(),
  envVars: z.record(z.string(), z.string()),
  workdir: z.string().optional(),
  user: z.string(),
});
export type BuildState = z.infer<typeof BuildState>;

export class StepCache {
  readonly root: string;
  readonly images: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, "builds", "cache");
    this.images = join(dataDir, "builds", "images");
  }

  entryDir(hash: string): string {
    return join(this.root, hash);
  }

  /** The entry's state, or null when there is none, it is incomplete, or its root image is gone. */
  get(hash: string): { layer: string; state: BuildState } | null {
    const dir = this.entryDir(hash);
    try {
      const state = BuildState.parse(JSON.parse(readFileSync(join(dir, "state.json"), "utf8")));
      const layer = join(dir, "layer.ext4");
      if (!existsSync(layer) || !existsSync(state.rootfs) || state.rootfsId !== fileId(state.rootfs)) return null;
      return { layer, state };
    } catch {
      return null;
    }
  }

  /** A staging dir for hash's entry; commit() makes it the entry. */
  stage(hash: string): string {
    const tmp = `${this.entryDir(hash)}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true, mode: 0o700 });
    return tmp;
  }

  commit(hash: string, state: BuildState): void {
    const tmp = `${this.entryDir(hash)}.tmp`;
    writeFileSync(join(tmp, "state.json"), `${JSON.stringify(state)}\n`);
    rmSync(this.entryDir(hash), { recursive: true, force: true });
    renameSync(tmp, this.entryDir(hash));
  }

  discard(hash: string): void {
    rmSync(`${this.entryDir(hash)}.tmp`, { recursive: true, force: true });
  }

  imageDir(baseHash: string): string {
    return join(this.images, baseHash);
  }
}

/** A file's identity: its inode, size and modification time. */
export function fileId(path: string): string {
  const st = statSync(path);
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}
