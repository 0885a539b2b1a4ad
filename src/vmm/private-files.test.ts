// The attack of a local user, or of another sandbox's jailed vmm (its uid is a local user too), on the data dir:
// after the daemon's VMs took snapshots, restored them in pooled and spawned vmms and paused into diffs, a
// process with a jail-range uid walks the data and run dirs and can open no file and list no directory there.
import { describe, expect, test } from "bun:test";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openState } from "../store/index.ts";
import { JAIL_ID_BASE, JAIL_SLOTS } from "./jail.ts";
import { VmProcess } from "./vm-process.ts";
import type { VmSpec } from "./vm-spec.ts";
import { haveTestGuest, testGuestSpec } from "./test-guest.ts";
import { jailedVmmSuite } from "./jail-test-support.ts";

const haveKvm = haveTestGuest("counter.bin");
const dirs = jailedVmmSuite();

/** A uid in the jail range that no VM of this test gets (they take the lowest free slots). */
const INTRUDER = JAIL_ID_BASE + JAIL_SLOTS - 7;

/** Every path under root (root included), found as root. */
function walk(root: string): string[] {
  const out = [root];
  if (lstatSync(root).isDirectory()) for (const n of readdirSync(root)) out.push(...walk(join(root, n)));
  return out;
}

/** What uid can open (files) or list (directories) of paths: one shell as that uid tries each. */
function readableBy(uid: number, paths: string[]): string[] {
  const script = `for p in "$@"; do
    if [ -d "$p" ]; then ls -a "$p" >/dev/null 2>&1 && echo "listed $p"
    elif [ -S "$p" ]; then :
    else head -c 1 "$p" >/dev/null 2>&1 && echo "read $p"; fi
  done`;
  const p = Bun.spawnSync(["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "sh", "-c", script, "sh", ...paths]);
  return p.stdout.toString().split("\n").filter(Boolean);
}

const read = (p: string) => Bun.file(p).text().catch(() => "");
async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}
const counting = (s: VmSpec, n: number) => waitFor(async () => ((await read(s.consolePath)).match(/^count /gm)?.length ?? 0) >= n);

describe.skipIf(!haveKvm || process.getuid?.() !== 0)("the data dir is private to root", () => {
  test("snapshots, a pooled restore, a spawned restore and a pause diff leave nothing another uid can read", async () => {
    // As the daemon lays it out: $DATA (the database, templates/, sandboxes/<id>/) and $RUN/vms/<id>.
    const top = mkdtempSync(join(tmpdir(), "vmm-private-"));
    dirs.push(top);
    const data = join(top, "data");
    const run = join(top, "run");
    const state = openState(data); // the database (tokens and env vars live there)
    const sandbox = (id: string, extra: Partial<VmSpec>): VmSpec => {
      const dir = join(data, "sandboxes", id);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      mkdirSync(join(run, "vms", id), { recursive: true, mode: 0o700 });
      return testGuestSpec(join(run, "vms", id), "counter.bin", {
        id,
        consolePath: join(dir, "console.log"),
        exitFile: join(dir, "exit.json"),
        ...extra,
      });
    };
    const intruderSees: string[] = [];
    const look = () => intruderSees.push(...readableBy(INTRUDER, [...walk(data), ...walk(run)]));
    try {
      // A template VM snapshotted (as a template build does), then stopped.
      const tpl = sandbox("template", {});
      const tplVm = await VmProcess.spawn(tpl);
      await counting(tpl, 5);
      await tplVm.pause();
      const snapDir = join(data, "templates", "t1", "snapshot", "vm");
      mkdirSync(join(data, "templates", "t1", "snapshot"), { recursive: true, mode: 0o700 });
      await tplVm.snapshot(snapDir);
      look();
      await tplVm.stop();
      // A warm pool entry restores it, runs, and pauses to disk (a diff over the template snapshot).
      const a = sandbox("sbx-a", { testGuest: undefined, restoreFrom: snapDir });
      const pooled = await VmProcess.spawnPooled(a);
      await pooled.restore(snapDir);
      await counting(a, 3);
      look();
      await pooled.pause();
      await pooled.snapshot(join(data, "sandboxes", "sbx-a", "paused"), { diff: true });
      look();
      await pooled.stop();
      // A resume: a spawned vmm restores the paused diff.
      const resumed = await VmProcess.spawn({ ...a, restoreFrom: join(data, "sandboxes", "sbx-a", "paused"), restoreBase: snapDir });
      await counting(a, 6);
      look();
      await resumed.stop();
      look();
      // The vmms really were jailed and the tree really holds the files the attack is after.
      expect(tplVm.jail?.uid).toBeGreaterThanOrEqual(JAIL_ID_BASE);
      expect(pooled.jail?.uid).toBeGreaterThanOrEqual(JAIL_ID_BASE);
      const files = walk(data).map((p) => p.slice(data.length));
      for (const f of ["/onebox.db", "/templates/t1/snapshot/vm/memory", "/sandboxes/sbx-a/paused/memory", "/sandboxes/sbx-a/exit.json"]) {
        expect(files).toContain(f);
      }
      // Nothing under the data dir has a group or other permission bit (sockets aside: there are none there).
      const open = walk(data).filter((p) => (lstatSync(p).mode & 0o077) !== 0);
      expect(open).toEqual([]);
    } finally {
      state.close();
    }
    expect(intruderSees).toEqual([]);
  });
});
