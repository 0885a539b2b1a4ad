// Test support: a SandboxManager over a real store and real files in a temporary data dir, with the machine layer
// faked in memory (src/machine/fake-machine.ts), so every lifecycle operation and its undo runs without KVM.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeMachine } from "../machine/fake-machine.ts";
import { openState, type SandboxRow, type State, type TemplateRow } from "../store/index.ts";
import { parseConfig, type Config } from "../util/config.ts";
import type { Attachment } from "./context.ts";
import type { CreateInput } from "./create.ts";
import { SandboxManager } from "./manager.ts";
import { sandboxPaths } from "./paths.ts";

export interface FakeSandboxes {
  dir: string;
  config: Config;
  state: State;
  fm: FakeMachine;
  manager: SandboxManager;
  template: TemplateRow;
  /** Creates a sandbox from the template (timeout 300 s unless input says otherwise). */
  create(input?: Partial<CreateInput>): Promise<SandboxRow>;
  /** A new manager over the same store, data dir and (still running) fake VMs: a daemon restart. */
  restart(): Promise<SandboxManager>;
  /** What is on disk for sandbox id: [sandbox dir, run dir, layer, pause snapshot]. */
  files(id: string): { sandboxDir: boolean; runDir: boolean; layer: boolean; paused: boolean };
  /** Sandbox ids that have a dir under $DATA/sandboxes. */
  sandboxDirs(): string[];
  close(): Promise<void>;
}

export async function fakeSandboxes(overrides: Partial<Config> = {}, attachments: Attachment[] = []): Promise<FakeSandboxes> {
  const dir = mkdtempSync(join(tmpdir(), "onebox-lifecycle-"));
  const config = parseConfig({ dataDir: dir, runRoot: join(dir, "run"), templateSnapshots: false, warmPoolSize: 0, ...overrides });
  const state = openState(dir);
  const tdir = join(dir, "templates", "tpl");
  mkdirSync(tdir, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(tdir, f), "image");
  const now = Date.now();
  const template: TemplateRow = {
    id: "tpl", aliases: '["base"]', dir: tdir, kernel: join(tdir, "vmlinuz"), initrd: null, cpuCount: 1, memoryMb: 128,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", readyPort: null, snapshotOf: null, ephemeral: false, defaults: "{}", buildId: null, createdAt: now, updatedAt: now,
  };
  state.templates.insert(template);
  const fm = new FakeMachine();
  const make = () => new SandboxManager(state, config, { ok: true, driver: fm.driver }, { guest: fm.guest, net: fm.net, hostProblem: () => null, attachments });
  const managers = [make()];
  const s: FakeSandboxes = {
    dir, config, state, fm, template,
    get manager() {
      return managers[managers.length - 1]!;
    },
    create: (input = {}) =>
      s.manager.create({
        templateID: "base", timeoutSec: 300, metadata: {}, envVars: {}, secure: true, allowInternetAccess: null,
        autoPause: false, autoResume: false, ...input,
      }),
    async restart() {
      await s.manager.detachAll();
      await fm.net.detach();
      managers.push(make());
      await s.manager.recover();
      return s.manager;
    },
    files(id) {
      const p = sandboxPaths(config, id);
      return { sandboxDir: existsSync(p.sandboxDir), runDir: existsSync(p.runDir), layer: existsSync(p.layer), paused: existsSync(p.pauseDir) };
    },
    sandboxDirs: () => (existsSync(join(dir, "sandboxes")) ? readdirSync(join(dir, "sandboxes")) : []),
    async close() {
      for (const m of managers) await m.detachAll();
      state.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return s;
}

/** Polls cond every 10 ms until it holds; throws after ms. */
export async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(10);
  }
}
