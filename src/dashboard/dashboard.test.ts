// The dashboard in a real browser: Debian's headless Chromium driven by playwright-core against the API over a real
// store with the machine layer faked (src/machine/fake-machine.ts): log in with the key, list sandboxes in several
// states, open one, pause and resume it, kill it and see it ended with its reason; keys and audit pages; no page or console errors, at
// 1280x800 and at a phone's 390x844. Screenshots go to $ONEBOX_ARTEFACTS (default: a temporary dir), printed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { createApi } from "../api/app.ts";
import { fakeSandboxes, type FakeSandboxes } from "../sandbox/fake-sandboxes.ts";
import { Admission } from "../scheduler/admission.ts";
import { CHROMIUM, CHROMIUM_ARGS, rebuildBundle } from "./test-support.ts";

const ARTEFACTS = process.env.ONEBOX_ARTEFACTS ?? mkdtempSync(join(tmpdir(), "onebox-dashboard-"));
if (!CHROMIUM) console.warn("SKIP dashboard browser test: no /usr/bin/chromium (Debian's chromium; scripts/install-deps.sh installs it)");

let s: FakeSandboxes;
let server: ReturnType<typeof Bun.serve>;
let browser: Browser;
let adminKey: string;
let userKey: string;
const ids: Record<string, string> = {};

beforeAll(async () => {
  if (!CHROMIUM) return;
  rebuildBundle();
  s = await fakeSandboxes({ auth: true });
  adminKey = s.state.keys.create("admin").key; // the first key is the admin key, as ensureAdminKey makes it
  userKey = s.state.keys.create("team").key;
  const app = createApi({ config: s.config, state: s.state, manager: s.manager, admission: new Admission(s.config, () => s.state.sandboxes.claims()) });
  server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => app.fetch(req) });
  ids.running = (await s.create({ metadata: { owner: "alice" } })).id;
  ids.victim = (await s.create()).id;
  ids.paused = (await s.create()).id;
  await s.manager.pause(ids.paused);
  ids.ended = (await s.create()).id;
  await s.manager.kill(ids.ended);
  // A history for the sparklines and the chart: a minute of samples, 5 s apart.
  const now = Date.now();
  for (const id of [ids.running, ids.victim]) s.state.sandboxes.update(id, { startedAt: now - 90_000 });
  for (const id of [ids.running, ids.victim])
    for (let i = 12; i >= 0; i--)
      s.state.metrics.insert({ sandboxId: id, ts: now - i * 5000, cpuCount: 1, cpuUsedPct: 10 + ((i * 37) % 60), memUsed: (40 + i) * 2 ** 20, memTotal: 128 * 2 ** 20, memCache: 0, diskUsed: 2 ** 20, diskTotal: 2 ** 29 });
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  mkdirSync(ARTEFACTS, { recursive: true });
  console.log(`dashboard screenshots: ${ARTEFACTS}`);
});

afterAll(async () => {
  await browser?.close();
  server?.stop(true);
  await s?.close();
});

/** A page that records every uncaught error and console error. */
async function open(width: number, height: number): Promise<{ page: Page; errors: string[] }> {
  const ctx = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("dialog", (d) => void d.accept());
  return { page, errors };
}

/** Usable on a phone: nothing wider than the screen (no sideways scrolling of the whole page). */
async function fitsWidth(page: Page): Promise<void> {
  // A string: this file is type-checked without the DOM library (it runs in the page).
  expect(await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth")).toBeLessThanOrEqual(0);
}

async function login(page: Page, key: string): Promise<void> {
  await page.goto(`${server.url}dashboard/`);
  await page.fill("#key", key);
  await page.click("button[type=submit]");
}

const sizes = [
  { name: "desktop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
];

test.skipIf(!CHROMIUM)("log in, list, open a sandbox, pause and resume it, kill it: it shows ended with its reason; no JS errors (1280x800 and a phone)", async () => {
  for (const size of sizes) {
    const { page, errors } = await open(size.width, size.height);
    const shot = (what: string) => page.screenshot({ path: join(ARTEFACTS, `${size.name}-${what}.png`), fullPage: true });
    await login(page, adminKey);
    // The live list: running and paused, not the ended one.
    await page.waitForSelector(`tr[data-id="${ids.running}"]`);
    expect(await page.locator(`tr[data-id="${ids.paused}"] .badge`).textContent()).toBe("paused");
    expect(await page.locator(`tr[data-id="${ids.ended}"]`).count()).toBe(0);
    if (size.name === "desktop") expect(await page.locator(`tr[data-id="${ids.running}"] polyline`).count()).toBe(2); // CPU and memory
    await fitsWidth(page);
    await shot("sandboxes");
    // Ended ones, with their reason.
    await page.selectOption("#f-state", "ended");
    await page.waitForSelector(`tr[data-id="${ids.ended}"]`);
    expect(await page.locator(`tr[data-id="${ids.ended}"] .reason`).textContent()).toStartWith("killed");

    // Open a running sandbox from the list and kill it.
    const victim = (size.name === "desktop" ? ids.victim : ids.running)!;
    await page.selectOption("#f-state", "running");
    await page.click(`tr[data-id="${victim}"] a`);
    await page.waitForSelector(`dd[data-field="State"] .badge:text("running")`);
    expect(await page.locator("figure.chart").count()).toBe(2);
    expect(await page.locator(".events li").first().textContent()).toContain("create template tpl");
    await fitsWidth(page);
    await shot("sandbox");
    if (size.name === "desktop") {
      await page.click("button:text('Pause')");
      await page.waitForSelector(`dd[data-field="State"] .badge:text("paused")`);
      expect(s.state.sandboxes.get(victim)?.state).toBe("paused");
      await page.click("button:text('Resume')");
      await page.waitForSelector(`dd[data-field="State"] .badge:text("running")`);
      expect(s.state.sandboxes.get(victim)?.state).toBe("running");
    }
    await page.click("button.danger:text('Kill')");
    await page.waitForSelector(`dd[data-field="State"] .badge:text("ended")`);
    expect(await page.locator(`dd[data-field="End reason"]`).textContent()).toStartWith("killed");
    expect(s.state.sandboxes.get(victim)?.endReason).toBe("killed");
    await shot("killed");
    await page.goto(`${server.url}dashboard/#/sandboxes?state=ended`);
    await page.waitForSelector(`tr[data-id="${victim}"] .reason:text-matches("^killed")`);
    expect(errors).toEqual([]);
    await page.context().close();
  }
}, 60_000);

test.skipIf(!CHROMIUM)("the admin key creates and revokes a key and reads the audit log; another key sees no Keys page and gets 403", async () => {
  const { page, errors } = await open(1280, 800);
  await login(page, adminKey);
  await page.click("nav a:text('Keys')");
  await page.fill("input[name=name]", "ci-bot");
  await page.click("button:text('Create key')");
  const shown = (await page.locator("code.secret").textContent()) ?? "";
  expect(shown).toMatch(/^e2b_/);
  const made = s.state.keys.list().find((k) => k.name === "ci-bot")!;
  expect(s.state.keys.identify(shown)).toBe(made.id);
  await page.click(`tr[data-key="${made.id}"] button:text('Revoke')`);
  await page.waitForSelector(`tr[data-key="${made.id}"] td:text("revoked")`);
  expect(s.state.keys.identify(shown)).toBeNull();
  await page.screenshot({ path: join(ARTEFACTS, "desktop-keys.png") });
  await page.click("nav a:text('Audit')");
  await page.waitForSelector("td:text('POST /onebox/keys')");
  await page.screenshot({ path: join(ARTEFACTS, "desktop-audit.png") });
  // A build requested through the E2B build API (the SDK's Template.build() first call): listed, its log opens.
  const req = await fetch(`${server.url}v3/templates`, { method: "POST", headers: { "x-api-key": adminKey, "content-type": "application/json" }, body: JSON.stringify({ name: "mytpl:v1" }) });
  expect(req.status).toBe(202);
  const { buildID } = (await req.json()) as { buildID: string };
  await page.click("nav a:text('Templates')");
  await page.waitForSelector("td:text('tpl')");
  expect(await page.locator(`tr[data-build="${buildID}"] .badge`).textContent()).toBe("waiting");
  await page.click(`tr[data-build="${buildID}"] button:text('Show')`);
  await page.waitForSelector("pre.console:text('(no log lines yet)')");
  expect(errors).toEqual([]);
  await page.context().close();

  const other = await open(1280, 800);
  await login(other.page, userKey);
  await other.page.waitForSelector(`tr[data-id="${ids.paused}"]`);
  expect(await other.page.locator("nav a:text('Keys')").count()).toBe(0);
  await other.page.goto(`${server.url}dashboard/#/keys`);
  await other.page.waitForSelector(".error:text('only the admin key')");
  expect(other.errors.filter((e) => !e.includes("403"))).toEqual([]); // the browser logs the refused fetch itself
  await other.page.context().close();
}, 60_000);
