// Tests the step cache on disk: an entry appears complete or not at all, and is only served over the root image
// file it was made over (a re-pulled image at the same path is another file).
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileId, StepCache } from "./step-cache.ts";

const dir = mkdtempSync(join(tmpdir(), "obx-cache-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("staged entries are absent until committed; a replaced root image misses", () => {
  const rootfs = join(dir, "rootfs.ext4");
  writeFileSync(rootfs, "v1");
  const cache = new StepCache(dir);
  const h = "f".repeat(64);
  const tmp = cache.stage(h);
  writeFileSync(join(tmp, "layer.ext4"), "layer");
  expect(cache.get(h)).toBeNull();
  const state = { rootfs, rootfsId: fileId(rootfs), envVars: { A: "1" }, user: "user", workdir: "/w" };
  cache.commit(h, state);
  expect(cache.get(h)).toEqual({ layer: join(cache.entryDir(h), "layer.ext4"), state });
  // The image pulled again (force): a new file at the same path; the layer made over the old one is not used.
  rmSync(rootfs);
  writeFileSync(rootfs, "v2, another size");
  expect(cache.get(h)).toBeNull();
});
