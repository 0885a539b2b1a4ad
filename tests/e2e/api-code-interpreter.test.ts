// The code interpreter through onebox's data plane against a real microVM: @e2b/code-interpreter's
// create (template code-interpreter-v1, ready port 49999), runCode, contexts, kill. Test host only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "@e2b/code-interpreter";
import { startTestDaemon, type TestDaemon } from "../../src/api/test-support.ts";
import { registerTemplate } from "../../src/templates/register.ts";

const REPO = join(import.meta.dir, "..", "..");
const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const BOOT_MS = 300_000;
const root = `/tmp/obx-ci-${process.pid}`;

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
}

/** The image: $ONEBOX_E2E_CI_TEMPLATE_DIR, or .cache/api-e2e-ci-template built on the outer host with
 *  `scripts/mkrootfs.sh --out .cache/api-e2e-ci-template --variant code-interpreter`. */
function imageDir(): string | null {
  const dir = process.env.ONEBOX_E2E_CI_TEMPLATE_DIR ?? join(REPO, ".cache", "api-e2e-ci-template");
  return existsSync(join(dir, "rootfs.ext4")) ? dir : null;
}

let d: TestDaemon;
if (IN_TESTHOST && !imageDir()) {
  console.warn("api-code-interpreter: skipped: no image; build .cache/api-e2e-ci-template on the outer host (see imageDir())");
}

describe.skipIf(!IN_TESTHOST || !imageDir())("code interpreter through onebox", () => {
  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    const initrd = join(root, "initramfs.cpio.gz");
    run(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd]);
    d = await startTestDaemon({ bootTimeoutMs: BOOT_MS });
    await registerTemplate(d.state, d.dataDir, {
      name: "code-interpreter-v1",
      from: imageDir()!,
      kernel: process.env.ONEBOX_TEST_KERNEL ?? "",
      initrd,
      cpuCount: 2,
      memoryMb: 1024,
      diskSizeMb: 2048,
      readyPort: 49999,
    });
  }, 600_000);

  afterAll(async () => {
    for (const row of d?.state.sandboxes.live() ?? []) await d.manager.kill(row.id).catch(() => undefined);
    await d?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test("create waits for the interpreter; runCode, state across cells, contexts; kill", async () => {
    const opts = { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: BOOT_MS };
    const sbx = await Sandbox.create({ ...opts, timeoutMs: 600_000 });
    try {
      const first = await sbx.runCode("x = 40 + 2\nx", { timeoutMs: 120_000 });
      expect(first.error).toBeUndefined();
      expect(first.text).toBe("42");
      const out = await sbx.runCode("print('hi from', x)", { timeoutMs: 60_000 });
      expect(out.logs.stdout.join("")).toBe("hi from 42\n");
      const ctx = await sbx.createCodeContext({ language: "python" });
      expect((await sbx.runCode("'x' in globals()", { context: ctx, timeoutMs: 120_000 })).text).toBe("False");
      expect((await sbx.listCodeContexts()).some((c) => c.id === ctx.id)).toBe(true);
    } finally {
      expect(await Sandbox.kill(sbx.sandboxId, opts)).toBe(true);
    }
    expect(d.state.sandboxes.live().length).toBe(0);
  }, 900_000);
});
