// The dashboard's terminal against a real microVM (issue 19 item 3): the PTY client the page runs under xterm.js
// (src/dashboard/client/envd-pty.ts: envd's process.Process Connect RPCs through the daemon's data plane) types
// `echo hi` and reads `hi` back, with the envd token that GET /sandboxes/{id} gives the API key; without the token,
// the data plane refuses it as envd does. The browser part (xterm.js, the pages) is tested in headless Chromium by
// src/dashboard/dashboard.test.ts; the test host has no browser, and Chromium under TCG would take minutes a page.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "../../src/api/test-support.ts";
import { openPty } from "../../src/dashboard/client/envd-pty.ts";
import { registerTemplate } from "../../src/templates/register.ts";
import { eventually } from "./lib/eventually.ts";

const REPO = join(import.meta.dir, "..", "..");
const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const BOOT_MS = 300_000; // creates are emulated (TCG) in the test host
const root = `/tmp/obx-dash-${process.pid}`;

/** The same image as api-journey and agent-sdk: $ONEBOX_E2E_TEMPLATE_DIR, or .cache/api-e2e-template built on the
 *  outer host with `scripts/mkrootfs.sh --out .cache/api-e2e-template --variant minimal`. */
function imageDir(): string | null {
  const dir = process.env.ONEBOX_E2E_TEMPLATE_DIR ?? join(REPO, ".cache", "api-e2e-template");
  return existsSync(join(dir, "rootfs.ext4")) ? dir : null;
}
if (IN_TESTHOST && !imageDir()) console.warn("dashboard-terminal: skipped: no template image; build .cache/api-e2e-template on the outer host (see imageDir())");

let d: TestDaemon;
let id = "";

describe.skipIf(!IN_TESTHOST || !imageDir())("the dashboard's terminal in a real microVM", () => {
  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    const initrd = join(root, "initramfs.cpio.gz");
    const r = Bun.spawnSync(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`mkinitramfs failed:\n${r.stdout}${r.stderr}`);
    d = await startTestDaemon({ bootTimeoutMs: BOOT_MS });
    await registerTemplate(d.state, d.dataDir, { name: "base", from: imageDir()!, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: 512, diskSizeMb: 2048 });
    const res = await d.api("/v2/sandboxes", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ templateID: "base", timeout: 1800 }) });
    expect(res.status).toBe(201);
    id = ((await res.json()) as { sandboxID: string }).sandboxID;
  }, 2 * BOOT_MS);

  afterAll(async () => {
    for (const row of d?.state.sandboxes.live() ?? []) await d.manager.kill(row.id).catch(() => undefined);
    await d?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test("type `echo hi` into the dashboard's PTY and read `hi` back; no token, no terminal", async () => {
    const sb = (await (await d.api(`/sandboxes/${id}`)).json()) as { envdAccessToken?: string };
    expect(sb.envdAccessToken).toBeString();
    await expect(openPty(id, undefined, { cols: 80, rows: 24 }, () => undefined, d.url)).rejects.toThrow(/401/);
    await expect(openPty(id, "wrong", { cols: 80, rows: 24 }, () => undefined, d.url)).rejects.toThrow(/401/);

    let out = "";
    const td = new TextDecoder();
    const pty = await openPty(id, sb.envdAccessToken, { cols: 80, rows: 24 }, (b) => void (out += td.decode(b, { stream: true })), d.url);
    expect(pty.pid).toBeGreaterThan(0);
    // What xterm.js hands the page for the keys e-c-h-o-space-h-i-Enter: one call per key, Enter as CR.
    for (const key of [..."echo hi", "\r"]) await pty.send(new TextEncoder().encode(key));
    // The echo of the typed line is "echo hi"; the command's own output is a line that is just "hi" (bash may put
    // its bracketed-paste-off sequence and a CR before it: `\x1b[?2004l\rhi\r\n`).
    const seen = await eventually(() => /[\r\n]hi\r\n/.test(out), 30_000);
    expect(seen ? "hi read back" : `no "hi" line in: ${JSON.stringify(out)}`).toBe("hi read back");
    await pty.resize(100, 30);
    await pty.send(new TextEncoder().encode("stty size\r"));
    expect((await eventually(() => /30 100\r\n/.test(out), 30_000)) ? "resized" : `no "30 100" in: ${JSON.stringify(out)}`).toBe("resized");
    await pty.kill();
    expect(await pty.done).toMatch(/exited|closed|broke/);
    // The audit log has the PTY, as for an SDK's.
    expect(d.state.audit.since(0).some((a) => a.plane === "data" && a.op === "pty" && a.sandboxId === id)).toBe(true);
  }, 120_000);
});
