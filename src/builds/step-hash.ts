// Each build step's cache key: a sha256 chained on the previous step's (as E2B's layers are), so a step is only
// served from the cache when the base and every step before it are the same too. A COPY's key includes the
// SDK's hash of its files (content, modes, sizes, names), so changed files miss; `force` skips the lookup.
import { createHash } from "node:crypto";
import type { Step } from "./schemas.ts";

/** The key of the base the steps run on: an image reference (its registry login excluded: the same image) or a
 *  template's id and creation time (a rebuilt template gets a new id). */
export function baseHash(base: { image: string } | { templateId: string; createdAt: number }): string {
  const what = "image" in base ? `image\n${base.image}` : `template\n${base.templateId}\n${base.createdAt}`;
  return createHash("sha256").update(`onebox-build-base-v1\n${what}`).digest("hex");
}

export function stepHash(prev: string, step: Step): string {
  const h = createHash("sha256").update(`${prev}\n${step.type}\n`);
  for (const a of step.args) h.update(`${a.length}:${a}\n`); // length-prefixed: ["a b"] and ["a", "b"] differ
  if (step.type === "COPY") h.update(`files:${step.filesHash ?? ""}\n`);
  return h.digest("hex");
}

/** The chain for a base and its steps: hashes[i] is the key of the state after step i. */
export function chain(base: string, steps: Step[]): string[] {
  const out: string[] = [];
  let prev = base;
  for (const s of steps) out.push((prev = stepHash(prev, s)));
  return out;
}

/** How many leading steps may be served from the cache: stop at the first forced step or the first miss. */
export function cachedPrefix(steps: Step[], hashes: string[], force: boolean, has: (hash: string) => boolean): number {
  if (force) return 0;
  let k = 0;
  while (k < steps.length && !steps[k]!.force && has(hashes[k]!)) k++;
  return k;
}
