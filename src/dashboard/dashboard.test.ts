// The dashboard's pages that need no sandbox, in a real browser: Debian's headless Chromium driven by playwright-core
// against a real daemon (startTestDaemon: real store, auth and API; it never boots a VM here): the admin key creates
// and revokes a key, reads the audit log and a build's log on the Templates page; another key sees no Keys page and
// is refused; no page or console errors. The sandbox pages (list in several states, one sandbox, its terminal,
// pause/resume, kill and its reason, a phone's width) run against real microVMs in tests/e2e/dashboard.test.ts (the
// test host); this file keeps what needs no guest, on every `bun test`. Screenshots go to $ONEBOX_ARTEFACTS
// (default: a temporary dir), printed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { startTestDaemon, type TestDaemon } from "../api/test-support.ts";
import { CHROMIUM, CHROMIUM_ARGS, rebuildBundle } from "./test-support.ts";

const ARTEFACTS = process.env.ONEBOX_ARTEFACTS ?? mkdtempSync(join(tmpdir(), "onebox-dashboard-"));
if (!CHROMIUM) console.warn("SKIP dashboard browser test: no /usr/bin/chromium (Debian's chromium; scripts/install-deps.sh installs it)");

let d: TestDaemon;
let browser: Browser;
let userKey: string;

beforeAll(async () => {
  if (!CHROMIUM) return;
  rebuildBundle();
  d = await startTestDaemon();
  userKey = d.state.keys.create("team").key; // d.key is the admin key (the first, as ensureAdminKey makes it)
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  mkdirSync(ARTEFACTS, { recursive: true });
  console.log(`dashboard screenshots: ${ARTEFACTS}`);
});

afterAll(async () => {
  await browser?.close();
  await d?.stop();
});

/** A page that records every uncaught error and console error. */
async function open(width: number, height: number): Promise<{ page: Page; errors: string[] }> {
  const ctx = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  page.on("dialog", (dlg) => void dlg.accept());
  return { page, errors };
}

async function login(page: Page, key: string): Promise<void> {
  await page.goto(`${d.url}/dashboard/`);
  await page.fill("#key", key);
  await page.click("button[type=submit]");
}

test.skipIf(!CHROMIUM)("the admin key creates and revokes a key and reads the audit log; another key sees no Keys page and gets 403", async () => {
  const { page, errors } = await open(1280, 800);
  await login(page, d.key);
  await page.click("nav a:text('Keys')");
  await page.fill("input[name=name]", "ci-bot");
  await page.click("button:text('Create key')");
  const shown = (await page.locator("code.secret").textContent()) ?? "";
  expect(shown).toMatch(/^e2b_/);
  const made = d.state.keys.list().find((k) => k.name === "ci-bot")!;
  expect(d.state.keys.identify(shown)).toBe(made.id);
  await page.click(`tr[data-key="${made.id}"] button:text('Revoke')`);
  await page.waitForSelector(`tr[data-key="${made.id}"] td:text("revoked")`);
  expect(d.state.keys.identify(shown)).toBeNull();
  await page.screenshot({ path: join(ARTEFACTS, "desktop-keys.png") });
  await page.click("nav a:text('Audit')");
  await page.waitForSelector("td:text('POST /onebox/keys')");
  await page.screenshot({ path: join(ARTEFACTS, "desktop-audit.png") });
  // A build requested through the E2B build API (the SDK's Template.build() first call): listed, its log opens.
  const req = await d.api("/v3/templates", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "mytpl:v1" }) });
  expect(req.status).toBe(202);
  const { buildID } = (await req.json()) as { buildID: string };
  await page.click("nav a:text('Templates')");
  await page.waitForSelector(`tr[data-build="${buildID}"]`);
  expect(await page.locator(`tr[data-build="${buildID}"] .badge`).textContent()).toBe("waiting");
  await page.click(`tr[data-build="${buildID}"] button:text('Show')`);
  await page.waitForSelector("pre.console:text('(no log lines yet)')");
  expect(errors).toEqual([]);
  await page.context().close();

  const other = await open(1280, 800);
  await login(other.page, userKey);
  await other.page.waitForSelector("#f-state");
  expect(await other.page.locator("nav a:text('Keys')").count()).toBe(0);
  await other.page.goto(`${d.url}/dashboard/#/keys`);
  await other.page.waitForSelector(".error:text('only the admin key')");
  expect(other.errors.filter((e) => !e.includes("403"))).toEqual([]); // the browser logs the refused fetch itself
  await other.page.context().close();
}, 60_000);
