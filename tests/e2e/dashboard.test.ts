// The dashboard against real microVMs (issue 19): Debian's headless Chromium, inside the test host beside the daemon
// whose sandboxes are real Linux guests (running, paused, killed), logs in with the API key, lists them, opens one,
// types `echo hi` into its terminal (xterm.js over envd's PTY RPCs) and reads `hi` back, pauses and resumes it, kills
// it and sees it ended with its reason, at 1280x800 and at a phone's 390x844, with no page or console error.
// Screenshots go to $ONEBOX_ARTEFACTS (scripts/test-e2e.sh copies them out of the test host). A first test drives the
// page's PTY client (src/dashboard/client/envd-pty.ts) without a browser: the token checks and a resize.
// Why Chromium runs in the test host and not outside (docs/operations.md, "Tests"): every part is then real and the
// file runs like every other e2e file, one command in one test host, without a forwarded port or a step on the outer
// host that would have to be started, synchronised and rerun beside it. Measured in the test host (TCG, 1 vCPU):
// Chromium starts in ~11 s, a first page in a new context takes ~13-18 s, a page within the app 2-5 s; the browser
// part adds about two minutes to this file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { startTestDaemon, type TestDaemon } from "../../src/api/test-support.ts";
import { openPty } from "../../src/dashboard/client/envd-pty.ts";
import { CHROMIUM, CHROMIUM_ARGS, rebuildBundle } from "../../src/dashboard/test-support.ts";
import { registerTemplate } from "../../src/templates/register.ts";
import { eventually } from "./lib/eventually.ts";

const REPO = join(import.meta.dir, "..", "..");
const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
const BOOT_MS = 300_000; // creates are emulated (TCG) in the test host
const PAGE_MS = 120_000; // a page under TCG: seconds, a first one in a new context up to ~20 s
const root = `/tmp/obx-dash-${process.pid}`;

/** The same image as api-journey and agent-sdk: $ONEBOX_E2E_TEMPLATE_DIR, or .cache/api-e2e-template built on the
 *  outer host with `scripts/mkrootfs.sh --out .cache/api-e2e-template --variant minimal`. */
function imageDir(): string | null {
  const dir = process.env.ONEBOX_E2E_TEMPLATE_DIR ?? join(REPO, ".cache", "api-e2e-template");
  return existsSync(join(dir, "rootfs.ext4")) ? dir : null;
}
if (IN_TESTHOST && !imageDir()) console.warn("dashboard: skipped: no template image; build .cache/api-e2e-template on the outer host (see imageDir())");

let d: TestDaemon;
let browser: Browser | undefined;
const ids = { running: "", paused: "", killed: "" };

async function create(metadata: Record<string, string> = {}): Promise<string> {
  const res = await d.api("/v2/sandboxes", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ templateID: "base", timeout: 1800, metadata }) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { sandboxID: string }).sandboxID;
}

describe.skipIf(!IN_TESTHOST || !imageDir())("the dashboard on real microVMs", () => {
  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    const initrd = join(root, "initramfs.cpio.gz");
    const r = Bun.spawnSync(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`mkinitramfs failed:\n${r.stdout}${r.stderr}`);
    rebuildBundle(); // the pages as ./src/dashboard/client has them, not a stale dist/dashboard
    d = await startTestDaemon({ bootTimeoutMs: BOOT_MS });
    await registerTemplate(d.state, d.dataDir, { name: "base", from: imageDir()!, kernel: process.env.ONEBOX_TEST_KERNEL ?? "", initrd, cpuCount: 1, memoryMb: 512, diskSizeMb: 2048 });
    // Sandboxes in several states: running, paused, and one killed before the browser comes (listed as ended).
    ids.running = await create({ owner: "alice" });
    [ids.paused, ids.killed] = await Promise.all([create(), create()]);
    expect((await d.api(`/sandboxes/${ids.paused}/pause`, { method: "POST" })).status).toBe(204);
    expect((await d.api(`/sandboxes/${ids.killed}`, { method: "DELETE" })).status).toBe(204);
  }, 4 * BOOT_MS);

  afterAll(async () => {
    await browser?.close();
    for (const row of d?.state.sandboxes.live() ?? []) await d.manager.kill(row.id).catch(() => undefined);
    await d?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test("the page's PTY client: `echo hi` read back, a resize; no token, no terminal", async () => {
    const id = ids.running;
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

  test("in Chromium: log in, list, open a sandbox, its terminal, pause/resume, kill it: ended with its reason; no JS errors", async () => {
    if (!CHROMIUM) throw new Error("no /usr/bin/chromium in the test host (scripts/testhost's ROOTFS_PACKAGES has it)");
    const artefacts = process.env.ONEBOX_ARTEFACTS ?? mkdtempSync(join(tmpdir(), "onebox-dashboard-"));
    mkdirSync(artefacts, { recursive: true });
    const t0 = Date.now();
    const lap = (what: string) => console.log(`dashboard: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: PAGE_MS });
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    const page = await ctx.newPage();
    page.setDefaultTimeout(PAGE_MS);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
    page.on("dialog", (dlg) => void dlg.accept()); // the Kill button's confirm()
    let size = "desktop";
    const shot = async (what: string) => {
      await page.screenshot({ path: join(artefacts, `e2e-${size}-${what}.png`), fullPage: true });
      lap(what);
    };
    /** Usable on a phone: nothing wider than the screen (a string: this file has no DOM library; it runs in the page). */
    const fitsWidth = async (p: Page) => expect(await p.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth")).toBeLessThanOrEqual(0);
    const state = (s: string) => page.waitForSelector(`dd[data-field="State"] .badge:text("${s}")`);
    lap("browser up");

    // Log in; the live list: running (with its CPU and memory sparklines once sampled) and paused, not the killed one.
    await page.goto(`${d.url}/dashboard/`);
    await page.fill("#key", d.key);
    await page.click("button[type=submit]");
    await page.waitForSelector(`tr[data-id="${ids.running}"]`);
    expect(await page.locator(`tr[data-id="${ids.running}"] .badge`).textContent()).toBe("running");
    expect(await page.locator(`tr[data-id="${ids.paused}"] .badge`).textContent()).toBe("paused");
    expect(await page.locator(`tr[data-id="${ids.killed}"]`).count()).toBe(0);
    // The metrics sampler's history (the list reloads every 5 s). Counted, not waited for as visible: a flat line at
    // 0% CPU has no height, and Playwright calls an element without height invisible.
    const sparks = page.locator(`tr[data-id="${ids.running}"] polyline`);
    await eventually(async () => (await sparks.count()) === 2, 60_000);
    expect(await sparks.count()).toBe(2); // CPU and memory
    await shot("sandboxes");
    // Ended ones, with their reason.
    await page.selectOption("#f-state", "ended");
    await page.waitForSelector(`tr[data-id="${ids.killed}"] .reason:text-matches("^killed")`);

    // Open the running one from the list: its metadata, events, chart.
    await page.selectOption("#f-state", "running");
    await page.click(`tr[data-id="${ids.running}"] a`);
    await state("running");
    const templateId = d.state.sandboxes.get(ids.running)!.templateId;
    expect(await page.locator(".events li").first().textContent()).toContain(`create template ${templateId}`);
    expect(await page.locator("figure.chart").count()).toBe(2);
    await shot("sandbox");

    // Its terminal: `echo hi` typed into xterm.js, `hi` read back from the screen's rows.
    await page.click("a.button:text('Terminal')");
    await page.waitForSelector(".status:text-matches('Connected \\\\(pid \\\\d+\\\\)')");
    await page.click(".term");
    await page.keyboard.type("echo hi");
    await page.keyboard.press("Enter");
    const rows = () => page.locator(".xterm-rows > div").allInnerTexts();
    await eventually(async () => (await rows()).some((r) => r.trim() === "hi"), 60_000);
    expect((await rows()).map((r) => r.trim())).toContain("hi");
    expect((await rows()).some((r) => r.includes("echo hi"))).toBe(true);
    await shot("terminal");
    await page.click(`h1 a:text("${ids.running}")`);
    await state("running");

    // Pause and resume it from the page (a real snapshot of the guest's memory, then a restore).
    await page.click("button:text('Pause')");
    await state("paused");
    expect(d.state.sandboxes.get(ids.running)?.state).toBe("paused");
    await page.click("button:text('Resume')");
    await state("running");
    expect(d.state.sandboxes.get(ids.running)?.state).toBe("running");
    lap("paused and resumed");

    // Kill it: ended, with its reason, here and in the list of ended ones.
    await page.click("button.danger:text('Kill')");
    await state("ended");
    expect(await page.locator(`dd[data-field="End reason"]`).textContent()).toStartWith("killed");
    expect(d.state.sandboxes.get(ids.running)?.endReason).toBe("killed");
    await shot("killed");
    await page.goto(`${d.url}/dashboard/#/sandboxes?state=ended`);
    await page.waitForSelector(`tr[data-id="${ids.running}"] .reason:text-matches("^killed")`);
    await page.waitForSelector(`tr[data-id="${ids.killed}"] .reason:text-matches("^killed")`);
    await shot("ended");
    // The template the sandboxes came from.
    await page.click("nav a:text('Templates')");
    await page.waitForSelector(`td:text("${templateId}")`);
    expect(await page.locator(`td:text-is("base")`).count()).toBe(1); // its alias

    // A phone: the list and the killed sandbox's page fit its width.
    size = "phone";
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${d.url}/dashboard/#/sandboxes?state=all`);
    await page.waitForSelector(`tr[data-id="${ids.paused}"]`);
    await fitsWidth(page);
    await shot("sandboxes");
    await page.click(`tr[data-id="${ids.running}"] a`);
    await state("ended");
    await fitsWidth(page);
    await shot("killed");

    expect(errors).toEqual([]);
    console.log(`dashboard screenshots: ${artefacts}`);
    await ctx.close();
  }, 600_000);
});
