// Test support: a real daemon (real SQLite, real HTTP) on a random port with a temporary data dir.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { VmDriverResult } from "../machine/vm-driver.ts";
import { parseConfig, type Config } from "../util/config.ts";
import { startDaemon, type Daemon } from "../daemon.ts";

export interface TestDaemon extends Daemon {
  dataDir: string;
  key: string;
  config: Config;
  /** fetch against the daemon with the admin key. */
  api(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

/** `driver`: a stand-in for the VMM (tests of the data plane), else the real one. */
export async function startTestDaemon(overrides: Partial<Config> = {}, dataDir?: string, driver?: VmDriverResult): Promise<TestDaemon> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "onebox-test-"));
  // No guest networking unless a test asks: it would set up the host this test runs on (docs/network.md).
  // No default template builds unless a test asks: they would run debootstrap on this host (as root).
  const config = parseConfig({ port: 0, dataDir: dir, runRoot: join(dir, "run"), network: false, buildDefaultTemplates: false, ...overrides });
  const d = await startDaemon(config, driver);
  const key = readFileSync(join(dir, "admin-key"), "utf8").trim();
  return Object.assign(d, {
    dataDir: dir,
    key,
    config,
    api(path: string, init: RequestInit = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("x-api-key")) headers.set("x-api-key", key);
      return fetch(d.url + path, { ...init, headers });
    },
    async stop() {
      await d.close();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  });
}
