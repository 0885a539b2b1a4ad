// Test support: vmm tests that run jailed (the default) whatever ONEBOX_VMM_JAIL the runner has, and clean their dirs.
import { afterAll, beforeAll } from "bun:test";
import { rmSync } from "node:fs";

/** Registers the suite's before/after hooks; returns the list of directories to remove after the suite. */
export function jailedVmmSuite(): string[] {
  const dirs: string[] = [];
  const wasSet = process.env.ONEBOX_VMM_JAIL;
  beforeAll(() => {
    delete process.env.ONEBOX_VMM_JAIL; // the default: jailed
  });
  afterAll(() => {
    if (wasSet === undefined) delete process.env.ONEBOX_VMM_JAIL;
    else process.env.ONEBOX_VMM_JAIL = wasSet;
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return dirs;
}
