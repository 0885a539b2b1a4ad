// Tests the official e2b SDKs (latest and 2.45, which checks the key format and uses v1 routes) against the daemon.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as latest from "e2b";
import * as v245 from "e2b-2.45";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon();
  const dir = join(d.dataDir, "templates", "tplsdk");
  mkdirSync(dir, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(dir, f), "");
  const now = Date.now();
  d.state.templates.insert({
    id: "tplsdk", aliases: '["base"]', dir, kernel: join(dir, "vmlinuz"), initrd: null, cpuCount: 1, memoryMb: 256,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", createdAt: now, updatedAt: now,
  });
  for (let i = 0; i < 3; i++) {
    d.state.sandboxes.insert({
      id: `sdk${i}row`, templateId: "tplsdk", state: "running", cpuCount: 1, memoryMb: 256, diskSizeMb: 512,
      envdVersion: "0.6.13", envdAccessToken: "tok", metadata: JSON.stringify({ who: i === 0 ? "me" : "other" }),
      envVars: "{}", secure: true, startedAt: now + i, endAt: now + 3_600_000,
    });
  }
});
afterAll(() => d.stop());

const sdks = { latest, "2.45": v245 } as const;

for (const [name, sdk] of Object.entries(sdks)) {
  describe(`e2b ${name}`, () => {
    const opts = () => ({ apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 10_000 });

    test("Sandbox.list with metadata filter and paging", async () => {
      const all: string[] = [];
      const pager = sdk.Sandbox.list({ ...opts(), limit: 2 });
      while (pager.hasNext) all.push(...(await pager.nextItems()).map((s) => s.sandboxId));
      expect(all.sort()).toEqual(["sdk0row", "sdk1row", "sdk2row"]);
      const mine = await sdk.Sandbox.list({ ...opts(), query: { metadata: { who: "me" } } }).nextItems();
      expect(mine.map((s) => s.sandboxId)).toEqual(["sdk0row"]);
      expect(mine[0]!.metadata).toEqual({ who: "me" });
    });

    test("kill of an unknown id → false", async () => {
      expect(await sdk.Sandbox.kill("nosuchsandbox", opts())).toBe(false);
    });

    test("getInfo of an unknown id → SandboxNotFoundError; of a known one → info", async () => {
      await expect(sdk.Sandbox.getInfo("nosuchsandbox", opts())).rejects.toBeInstanceOf(sdk.SandboxNotFoundError);
      const info = await sdk.Sandbox.getInfo("sdk1row", opts());
      expect(info.sandboxId).toBe("sdk1row");
      expect(info.state).toBe("running");
      expect(info.metadata).toEqual({ who: "other" });
    });

    test("create surfaces the 503 with its message", async () => {
      // The two SDK versions' overloads do not unify; both take (template, opts).
      const create = sdk.Sandbox.create.bind(sdk.Sandbox) as (t: string, o: object) => Promise<unknown>;
      const err = await create("base", opts()).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toContain("cannot start a sandbox");
      if (name === "latest") expect(err!.name).toBe("ServiceBusyError");
      expect(d.state.sandboxes.count()).toBe(3);
    });

    test("a wrong key → AuthenticationError", async () => {
      await expect(sdk.Sandbox.getInfo("sdk1row", { ...opts(), apiKey: "e2b_" + "1".repeat(40) })).rejects.toBeInstanceOf(
        sdk.AuthenticationError,
      );
    });
  });
}
