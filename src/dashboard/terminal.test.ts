// The dashboard's terminal in a real browser: Debian's headless Chromium types `echo hi` into xterm.js and reads `hi`
// back from the terminal's screen. The path is the product's: a real daemon (auth, data plane, token check,
// forwarding), and the real guest agent (guest/agent, run on this host) behind the sandbox's envd forward socket; only
// the VMM is a stand-in that finds the VM alive and hands out that socket (as src/proxy/access.test.ts does).
// tests/e2e/dashboard-terminal.test.ts does the same into a real microVM in the test host.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { startTestAgent, type RunningAgent } from "../../guest/agent/test-harness.ts";
import { startTestDaemon, type TestDaemon } from "../api/test-support.ts";
import type { VmDriverResult, VmHandle } from "../machine/vm-driver.ts";
import { openState } from "../store/index.ts";
import { forwardPath } from "../vmm/index.ts";
import { CHROMIUM, CHROMIUM_ARGS, rebuildBundle } from "./test-support.ts";

if (!CHROMIUM) console.warn("SKIP dashboard terminal browser test: no /usr/bin/chromium (Debian's chromium; scripts/install-deps.sh installs it)");
const TOKEN = "envd-token-for-the-terminal-0123";
const ID = "termbox";

let agent: RunningAgent;
let relay: Server;
let d: TestDaemon;
let browser: Browser;

/** The stand-in VMM: the recorded VM is alive; envd's port is the forward socket made before the daemon starts. */
function standInDriver(): VmDriverResult {
  const handle = (): VmHandle => {
    let exit: (e: never) => void = () => undefined;
    const exited = new Promise<never>((r) => (exit = r));
    return {
      pid: 0x3fffffff, // above any pid_max: nothing to signal
      pause: async () => undefined,
      resume: async () => undefined,
      stop: async () => exit({ reason: "stopped" } as never),
      snapshot: async () => undefined,
      stats: async () => ({}) as never,
      forward: async () => {
        throw new Error("only envd's port is forwarded here");
      },
      exited,
    };
  };
  return { ok: true, driver: { spawn: async () => { throw new Error("no spawn here"); }, adopt: async () => handle(), readExit: async () => null } };
}

beforeAll(async () => {
  if (!CHROMIUM) return;
  rebuildBundle();
  agent = await startTestAgent();
  expect((await agent.init({ accessToken: TOKEN })).status).toBe(204);
  const dir = mkdtempSync(join(tmpdir(), "onebox-term-"));
  const runDir = join(dir, "run", "vms", ID);
  mkdirSync(runDir, { recursive: true });
  // What the VMM's forward socket is: a byte pipe to the guest's port (here, the agent's TCP port on this host).
  relay = createServer((c) => c.pipe(connect(agent.port, "127.0.0.1")).pipe(c)).listen(forwardPath(runDir, 49983));
  const st = openState(dir);
  const now = Date.now();
  st.sandboxes.insert({
    id: ID, templateId: "tpl", state: "running", cpuCount: 1, memoryMb: 256, diskSizeMb: 512, envdVersion: "0.6.13",
    envdAccessToken: TOKEN, metadata: "{}", envVars: "{}", secure: true, startedAt: now, endAt: now + 3_600_000, runDir,
  });
  st.close();
  d = await startTestDaemon({ runRoot: join(dir, "run") }, dir, standInDriver());
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await d?.stop();
  relay?.close();
  await agent?.stop();
});

test.skipIf(!CHROMIUM)("type `echo hi` into the dashboard's terminal and read `hi` back; the PTY is audited", async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  await page.goto(`${d.url}/dashboard/#/sandboxes/${ID}/terminal`);
  await page.fill("#key", d.key);
  await page.click("button[type=submit]");
  await page.waitForSelector(".status:text-matches('Connected \\\\(pid \\\\d+\\\\)')", { timeout: 15_000 });
  await page.click(".term");
  await page.keyboard.type("echo hi");
  await page.keyboard.press("Enter");
  // The screen's rows: the typed line (`echo hi`), then the command's own line, `hi` alone.
  const rows = () => page.locator(".xterm-rows > div").allInnerTexts();
  const deadline = Date.now() + 15_000;
  while (!(await rows()).some((r) => r.trim() === "hi") && Date.now() < deadline) await Bun.sleep(100);
  expect((await rows()).map((r) => r.trim())).toContain("hi");
  expect((await rows()).some((r) => r.includes("echo hi"))).toBe(true);
  const shots = process.env.ONEBOX_ARTEFACTS ?? mkdtempSync(join(tmpdir(), "onebox-dashboard-"));
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, "desktop-terminal.png") });
  console.log(`dashboard terminal screenshot: ${join(shots, "desktop-terminal.png")}`);
  expect(d.state.audit.since(0).some((a) => a.plane === "data" && a.op === "pty" && a.sandboxId === ID)).toBe(true);
  expect(errors).toEqual([]);
  await ctx.close();
}, 60_000);
