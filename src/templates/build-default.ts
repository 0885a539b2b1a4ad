// Builds the default templates (base, code-interpreter-v1) with the template builder's image scripts
// (scripts/mkrootfs.sh, scripts/mkinitramfs.sh: embedded in dist/onebox, or a checkout's) and registers
// them; used by `onebox serve` on first start and by `onebox template build`.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { defaultKernelDir, resolveGuestKernel, type GuestKernel } from "../sys/guest-kernel.ts";
import type { State, TemplateRow } from "../store/index.ts";
import { aliasesOf } from "../store/template-store.ts";
import { log } from "../util/log.ts";
import { BuildError, StepRun } from "./build-steps.ts";
import { templateBuilder, type TemplateBuilder } from "./builder-files.ts";
import { LogProgress, type ProgressReporter } from "./progress.ts";
import { registerTemplate, removeTemplate } from "./register.ts";

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

/** The steps of a default template build, in order (the progress display counts them). */
export const BUILD_STEPS = ["kernel", "initramfs", "debootstrap", "packages", "image", "register"] as const;

/** scripts/mkrootfs.sh announces its steps as `mkrootfs: phase NAME [cached]`. */
function mkrootfsMarker(line: string): { step: string; cached: boolean } | null {
  const m = /^mkrootfs: phase (\w+)( cached)?$/.exec(line);
  return m ? { step: m[1]!, cached: !!m[2] } : null;
}
function mkrootfsDetail(line: string): string | null {
  const m = /^mkrootfs: \[\+\d+s\] (.*)$/.exec(line);
  return m ? m[1]! : null;
}

export function buildLogPath(dataDir: string, name: string): string {
  return join(dataDir, "templates", "logs", `build-${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
}

export interface BuildOptions {
  /** The "snapshot" step: boot the registered template once and snapshot it ready (templates/snapshot.ts).
   *  Without it the daemon makes the snapshot at the template's first create. */
  snapshot?: (row: TemplateRow) => Promise<void>;
  reporter?: ProgressReporter;
  signal?: AbortSignal;
  /** Defaults to buildLogPath(dataDir, name). */
  logFile?: string;
}

/** Builds one default template and registers it under its name. Each step is cached where its
 *  output can be (kernel, initramfs, the debootstrap tree); a failure or interrupt removes the
 *  partial image and throws BuildError / BuildInterrupted naming the step. */
export async function buildDefaultTemplate(state: State, dataDir: string, sourceDir: string | undefined, t: DefaultTemplate, o: BuildOptions = {}): Promise<TemplateRow> {
  const logFile = o.logFile ?? buildLogPath(dataDir, t.name);
  mkdirSync(dirname(logFile), { recursive: true });
  const steps = o.snapshot ? [...BUILD_STEPS, "snapshot"] : BUILD_STEPS;
  const run = new StepRun({ template: t.name, steps, logFile, reporter: o.reporter ?? new LogProgress(t.name), signal: o.signal });
  return run.run(async () => {
    const { kernel, initrd, builder } = await kernelSteps(run, dataDir, sourceDir);
    const mkrootfs = join(builder.dir, "scripts", "mkrootfs.sh");
    const out = join(dataDir, "templates", `.build-${t.name}`);
    run.onFailure("partial image", () => rmSync(out, { recursive: true, force: true }));
    try {
      run.begin("debootstrap");
      // mkrootfs.sh moves on to packages and image itself, saying so; it cleans up after itself on
      // SIGTERM (its trap), and the cached tree is only ever renamed into place when complete.
      await run.spawn(["nice", "bash", mkrootfs, "--out", out, "--variant", t.variant, ...builder.mkrootfsArgs], { cwd: builder.dir, marker: mkrootfsMarker, detail: mkrootfsDetail });
      const row = await run.step("register", () =>
        registerTemplate(state, dataDir, {
          name: t.name,
          from: out,
          kernel: kernel.path,
          initrd,
          cpuCount: t.cpuCount,
          memoryMb: t.memoryMb,
          diskSizeMb: t.diskSizeMb,
          readyPort: t.readyPort,
        }),
      );
      if (o.snapshot) {
        // A template whose snapshot could not be made is not half-registered: the record goes too.
        run.onFailure("registered template", () => void removeTemplate(state, row.id));
        await run.step("snapshot", () => o.snapshot!(row));
      }
      return row;
    } finally {
      // The registered template has its own copy; the build output is never kept.
      rmSync(out, { recursive: true, force: true });
    }
  });
}

/** The steps every template build starts with: the guest kernel (a file), the initramfs (built once beside it);
 *  and the builder whose scripts the build runs (builder-files.ts: `sourceDir` when given, else onebox's own). */
export async function kernelSteps(run: StepRun, dataDir: string, sourceDir: string | undefined): Promise<{ kernel: GuestKernel; initrd: string; builder: TemplateBuilder }> {
  let builder!: TemplateBuilder;
  const kernel = await run.step("kernel", async () => {
    builder = await templateBuilder(dataDir, sourceDir);
    run.log(`template builder ${builder.dir} (${builder.from})`);
    const mkrootfs = join(builder.dir, "scripts", "mkrootfs.sh");
    const mkinitramfs = join(builder.dir, "scripts", "mkinitramfs.sh");
    for (const s of [mkrootfs, mkinitramfs]) {
      if (!existsSync(s)) throw new Error(`${s} not found: point ONEBOX_SOURCE_DIR (or --source-dir) at a onebox checkout, or unset it to use the builder in onebox`);
    }
    const k = resolveGuestKernel({ dataDir });
    if (k.format === "missing" || k.format === "unknown") {
      throw new Error(`no guest kernel at ${k.path}: run \`onebox template fetch-kernel\` (or scripts/fetch-kernel.sh ${defaultKernelDir(dataDir)})`);
    }
    run.log(`kernel ${k.path} (${k.format}, ${k.source})`);
    return k;
  });
  let initrd = kernel.initrd;
  if (initrd) {
    run.begin("initramfs", true);
  } else {
    run.begin("initramfs");
    initrd = join(defaultKernelDir(dataDir), "initramfs.cpio.gz");
    // mkinitramfs.sh writes its output atomically: an interrupt leaves no half-written file.
    const mkinitramfs = join(builder.dir, "scripts", "mkinitramfs.sh");
    await run.spawn(["nice", "bash", mkinitramfs, "--modules", join(defaultKernelDir(dataDir), "modules"), "--out", initrd], { cwd: builder.dir });
  }
  return { kernel, initrd, builder };
}

export type BuildStatus = { state: "building"; since: number } | { state: "failed"; message: string };

/** Builds the missing default templates one after the other, in the background; create asks it
 *  why a default template is missing (being built, or failed and why). */
export class DefaultTemplateBuilder {
  private status = new Map<string, BuildStatus>();

  constructor(
    private readonly state: State,
    private readonly dataDir: string,
    /** A checkout whose scripts win over the embedded ones (ONEBOX_SOURCE_DIR); undefined: onebox's own. */
    private readonly sourceDir: string | undefined,
  ) {}

  statusOf(name: string): BuildStatus | undefined {
    return this.status.get(name);
  }

  /** Every default template being built or failed, by name (the dashboard's templates page). */
  statuses(): Record<string, BuildStatus> {
    return Object.fromEntries(this.status);
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
          const logFile = buildLogPath(this.dataDir, t.name);
          log.info("template build log", { name: t.name, log: logFile });
          const row = await buildDefaultTemplate(this.state, this.dataDir, this.sourceDir, t, { logFile });
          this.status.delete(t.name);
          log.info("default template ready", { name: t.name, id: row.id });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          this.status.set(t.name, { state: "failed", message });
          const tail = e instanceof BuildError ? e.logTail : [];
          log.warn("default template build failed", { name: t.name, error: message, logTail: tail });
        }
      }
    })();
  }
}
