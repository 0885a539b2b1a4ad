// Builds the default templates (base, code-interpreter-v1) from the source tree's image scripts
// (scripts/mkrootfs.sh, scripts/mkinitramfs.sh) and registers them; used by `onebox serve` on first
// start (install.sh sets ONEBOX_SOURCE_DIR) and by `onebox template build`.
import { existsSync, mkdirSync, openSync, closeSync, rmSync } from "node:fs";
import { join } from "node:path";
import { defaultKernelDir, resolveGuestKernel } from "../sys/guest-kernel.ts";
import type { State, TemplateRow } from "../store/index.ts";
import { aliasesOf } from "../store/template-store.ts";
import { log } from "../util/log.ts";
import { registerTemplate } from "./register.ts";

export interface DefaultTemplate {
  name: string;
  /** scripts/mkrootfs.sh --variant */
  variant: "minimal" | "base" | "code-interpreter";
  cpuCount: number;
  memoryMb: number;
  diskSizeMb: number;
  readyPort?: number;
}

/** The SDK's defaults: `base` for Sandbox, `code-interpreter-v1` for @e2b/code-interpreter (spec §1.3). */
export const DEFAULT_TEMPLATES: readonly DefaultTemplate[] = [
  { name: "base", variant: "base", cpuCount: 1, memoryMb: 512, diskSizeMb: 2048 },
  // The interpreter must answer before create returns: the SDK calls runCode right away (spec §4).
  { name: "code-interpreter-v1", variant: "code-interpreter", cpuCount: 2, memoryMb: 1024, diskSizeMb: 2048, readyPort: 49999 },
];

async function run(cmd: string[], logFile: string, cwd: string): Promise<void> {
  const fd = openSync(logFile, "a");
  try {
    const p = Bun.spawn(["nice", ...cmd], { cwd, stdout: fd, stderr: fd, stdin: "ignore" });
    const code = await p.exited;
    if (code !== 0) throw new Error(`${cmd.slice(0, 2).join(" ")} failed with status ${code}: see ${logFile}`);
  } finally {
    closeSync(fd);
  }
}

/** Builds one default template and registers it under its name. */
export async function buildDefaultTemplate(state: State, dataDir: string, sourceDir: string, t: DefaultTemplate): Promise<TemplateRow> {
  const mkrootfs = join(sourceDir, "scripts", "mkrootfs.sh");
  const mkinitramfs = join(sourceDir, "scripts", "mkinitramfs.sh");
  for (const s of [mkrootfs, mkinitramfs]) {
    if (!existsSync(s)) throw new Error(`${s} not found: point ONEBOX_SOURCE_DIR (or --source-dir) at a onebox checkout`);
  }
  const kernel = resolveGuestKernel({ dataDir });
  if (kernel.format === "missing" || kernel.format === "unknown") {
    throw new Error(`no guest kernel at ${kernel.path}: run scripts/fetch-kernel.sh ${defaultKernelDir(dataDir)}`);
  }
  const logDir = join(dataDir, "templates");
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `build-${t.name}.log`);
  let initrd = kernel.initrd;
  if (!initrd) {
    initrd = join(defaultKernelDir(dataDir), "initramfs.cpio.gz");
    await run(["bash", mkinitramfs, "--modules", join(defaultKernelDir(dataDir), "modules"), "--out", initrd], logFile, sourceDir);
  }
  const out = join(logDir, `.build-${t.name}`);
  try {
    await run(["bash", mkrootfs, "--out", out, "--variant", t.variant], logFile, sourceDir);
    return await registerTemplate(state, dataDir, {
      name: t.name,
      from: out,
      kernel: kernel.path,
      initrd,
      cpuCount: t.cpuCount,
      memoryMb: t.memoryMb,
      diskSizeMb: t.diskSizeMb,
      readyPort: t.readyPort,
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export type BuildStatus = { state: "building"; since: number } | { state: "failed"; message: string };

/** Builds the missing default templates one after the other, in the background; create asks it
 *  why a default template is missing (being built, or failed and why). */
export class DefaultTemplateBuilder {
  private status = new Map<string, BuildStatus>();

  constructor(
    private readonly state: State,
    private readonly dataDir: string,
    private readonly sourceDir: string,
  ) {}

  statusOf(name: string): BuildStatus | undefined {
    return this.status.get(name);
  }

  /** Starts the builds of default templates not registered yet; resolves when all are done. */
  start(): Promise<void> {
    const names = new Set(this.state.templates.list().flatMap(aliasesOf));
    const missing = DEFAULT_TEMPLATES.filter((t) => !names.has(t.name));
    for (const t of missing) this.status.set(t.name, { state: "building", since: Date.now() });
    return (async () => {
      for (const t of missing) {
        this.status.set(t.name, { state: "building", since: Date.now() });
        log.info("building default template", { name: t.name, variant: t.variant });
        try {
          const row = await buildDefaultTemplate(this.state, this.dataDir, this.sourceDir, t);
          this.status.delete(t.name);
          log.info("default template ready", { name: t.name, id: row.id });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          this.status.set(t.name, { state: "failed", message });
          log.warn("default template build failed", { name: t.name, error: message });
        }
      }
    })();
  }
}
