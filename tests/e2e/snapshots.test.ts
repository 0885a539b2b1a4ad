// Sandbox snapshots and forks through the real e2b SDK against real microVMs (`onebox serve` as a subprocess): a
// file and a counting process in a sandbox, createSnapshot while it runs on, the file changed after; a sandbox
// created from the snapshot id has the snapshot's file and its process counting on, under its own identity;
// listSnapshots shows it, deleteSnapshot is refused while that sandbox lives and removes it after; fork({count: 3})
// makes three copies that outlive their parent. Runs only inside the test host.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "e2b";
import { apiImageDir, BOOT_MS, ServeDaemon } from "./lib/serve-daemon.ts";

const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const d = new ServeDaemon(`/tmp/obx-snap-${process.pid}`, 3);
const { dataDir, url } = d;
const opts = () => d.opts();
const image = apiImageDir("snapshots");

describe.skipIf(!IN_TESTHOST || !image)("sandbox snapshots against real microVMs", () => {
  beforeAll(async () => {
    d.addTemplate("base", image!);
    await d.start();
  }, 1_200_000);

  afterAll(() => d.cleanup({ snapshots: "1" }));

  const counter = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done";
  const count = async (s: Sandbox) => Number((await s.commands.run("cat /tmp/count")).stdout.trim());

  // The snapshot test's sandbox, forked by the fork test (one create less: the test host is emulated and slow).
  let a: Sandbox;

  test("createSnapshot of a running sandbox; a sandbox created from its id has its file and process; list; delete", async () => {
    a = await Sandbox.create("base", { ...opts(), metadata: { snapshots: "1" }, timeoutMs: 600_000 });
    await a.files.write("/home/user/state.txt", "before");
    await a.commands.run(counter, { background: true });
    await Bun.sleep(1000);
    const atSnapshot = await count(a);
    expect(atSnapshot).toBeGreaterThan(0);

    const snap = await a.createSnapshot({ name: "snap-e2e" });
    expect(snap.names).toEqual(["snap-e2e"]);
    // The sandbox runs on after the capture, and its file changes after the snapshot.
    expect(await a.isRunning()).toBe(true);
    await a.files.write("/home/user/state.txt", "after");
    expect(await a.files.read("/home/user/state.txt")).toBe("after");

    // The snapshot id is a template id: GET /templates/{id} by id and by name.
    for (const ref of [snap.snapshotId, "snap-e2e"]) {
      const res = await fetch(`${url}/templates/${ref}`, { headers: { "x-api-key": d.key } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { templateID: string }).templateID).toBe(snap.snapshotId);
    }

    const b = await Sandbox.create(snap.snapshotId, { ...opts(), metadata: { snapshots: "1" }, timeoutMs: 600_000 });
    expect(b.sandboxId).not.toBe(a.sandboxId);
    expect(await b.files.read("/home/user/state.txt")).toBe("before");
    // The counting process came along in memory and counts on from where the snapshot caught it.
    const c1 = await count(b);
    expect(c1).toBeGreaterThanOrEqual(atSnapshot);
    await Bun.sleep(1000);
    expect(await count(b)).toBeGreaterThan(c1);
    const ident = (await b.commands.run('printf "%s %s" "$(cat /run/onebox/sandbox-id)" "$(hostname)"')).stdout;
    expect(ident).toBe(`${b.sandboxId} ${b.sandboxId}`);
    expect(await a.files.read("/home/user/state.txt")).toBe("after");

    const listed = await Sandbox.listSnapshots({ ...opts(), sandboxId: a.sandboxId }).nextItems();
    expect(listed).toEqual([{ snapshotId: snap.snapshotId, names: ["snap-e2e"] }]);
    expect((await a.listSnapshots().nextItems()).map((s) => s.snapshotId)).toEqual([snap.snapshotId]);

    // Refused while b (created from it) lives: b's layer and pause diffs depend on its files.
    await expect(Sandbox.deleteSnapshot(snap.snapshotId, opts())).rejects.toThrow("live sandbox");
    await b.kill();
    expect(await Sandbox.deleteSnapshot(snap.snapshotId, opts())).toBe(true);
    expect(await Sandbox.listSnapshots(opts()).nextItems()).toEqual([]);
    expect(await Sandbox.deleteSnapshot(snap.snapshotId, opts())).toBe(false);
    expect(existsSync(join(dataDir, "templates", snap.snapshotId))).toBe(false);
  }, 2 * BOOT_MS);

  test("fork({count: 3}): three sandboxes with the parent's file and process, their own ids, hostnames and entropy; the parent's end leaves them", async () => {
    const p = a; // its file says "after", its counter runs
    const results = await p.fork({ count: 3, timeoutMs: 600_000 });
    const forks = results.filter((r): r is Sandbox => r instanceof Sandbox);
    expect(results.filter((r) => r instanceof Error)).toEqual([]);
    expect(forks).toHaveLength(3);
    expect(await p.isRunning()).toBe(true);
    await p.kill();
    // One command per fork: identity, entropy, the file, and the counter read until it moves (up to 10 s: three
    // new guests under emulation share the test host, and one turn of the loop took over 0.6 s in a run).
    const moved = 'c1=$(cat /tmp/count); c2=$c1; i=0; while [ $i -lt 100 ] && [ "$c2" = "$c1" ]; do sleep 0.1; c2=$(cat /tmp/count); i=$((i+1)); done; echo "$c1"; echo "$c2"';
    const probe = `printf '%s\\n' "$(cat /run/onebox/sandbox-id)" "$(hostname)" "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n')" "$(cat /home/user/state.txt)"; ${moved}`;
    const seen = await Promise.all(
      forks.map(async (f) => {
        const [id, host, rnd, file, c1, c2] = (await f.commands.run(probe)).stdout.trim().split("\n");
        expect([id, host, file]).toEqual([f.sandboxId, f.sandboxId, "after"]);
        expect(Number(c2)).toBeGreaterThan(Number(c1));
        return rnd!;
      }),
    );
    expect(new Set([p.sandboxId, ...forks.map((f) => f.sandboxId)]).size).toBe(4);
    expect(new Set(seen).size).toBe(3);
    // The fork's capture is not a listed snapshot.
    expect(await Sandbox.listSnapshots(opts()).nextItems()).toEqual([]);
    await Promise.all(forks.map((f) => f.kill()));
  }, 2 * BOOT_MS);
});
