// Runs one template build (POST /v2/templates/{id}/builds/{buildID}): the base (a registered template, or an OCI
// image through the `template build --from-image` path), then the steps in a build microVM with a network slot,
// each served from the step cache when its chained hash is there, else run and its disk layer cached; then the
// template is registered with the build's env, workdir, user and start command, and its ready snapshot is made
// (the start command runs in it, the ready command decides when). A failure leaves no template, no VM, no files.
import { existsSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ENVD_PORT } from "../../guest/protocol.ts";
import { cloneLayer } from "../machine/disk.ts";
import { guestExec, type ExecResult } from "../machine/guest-exec.ts";
import { templateFiles } from "../machine/vm-config.ts";
import type { SandboxManager } from "../sandbox/manager.ts";
import type { State, TemplateRow } from "../store/index.ts";
import { E2B_DEFAULT_USER, E2B_DEFAULT_WORKDIR, templateDefaults, type TemplateDefaults } from "../store/template-defaults.ts";
import { buildOciFiles, DEFAULTS_FILE } from "../templates/oci/build.ts";
import { DEFAULT_OCI_LIMITS } from "../templates/oci/limits.ts";
import { removeTemplate } from "../templates/register.ts";
import { assignTags } from "../templates/tags.ts";
import { agentEnvdVersion } from "../machine/envd-version.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import { newTemplateId } from "../util/ids.ts";
import { log } from "../util/log.ts";
import type { Build, BuildRegistry } from "./build-registry.ts";
import type { BuildBody, Step } from "./schemas.ts";
import { copyScript, q } from "./copy-script.ts";
import { fileId, StepCache, type BuildState } from "./step-cache.ts";
import { baseHash, cachedPrefix, chain } from "./step-hash.ts";
import type { BuildUploads } from "./uploads.ts";
import type { BuildCacheQuota } from "./cache-quota.ts";

/** A step's failure: its SDK step name (the 1-based instruction index, "base" or "finalize"), for reason.step. */
export class StepFailed extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RunnerDeps {
  config: Config;
  state: State;
  manager: SandboxManager;
  registry: BuildRegistry;
  uploads: BuildUploads;
  /** The build cache's bound: what this build uses is held (never pruned) until it ends. */
  quota: BuildCacheQuota;
  /** The build VM is admitted like a create (src/scheduler/admission.ts): a full host fails the build, 429's text. */
  admit: <T>(cost: { cpus: number; memoryMib: number }, fn: () => Promise<T>) => Promise<T>;
}

interface Base {
  rootfs: string;
  layer: string;
  defaults: TemplateDefaults;
  kernel: string;
  initrd: string | null;
  cmdlineExtra: string;
  hash: string;
}

const RUN_STEP_TIMEOUT_MS = 20 * 60_000;

export class BuildRunner {
  readonly cache: StepCache;

  constructor(private readonly d: RunnerDeps) {
    this.cache = new StepCache(d.config.dataDir);
  }

  /** Queues the build and runs it to ready or error; never rejects (the outcome is the build's status). */
  async start(b: Build, body: BuildBody): Promise<void> {
    const { registry } = this.d;
    const t0 = performance.now();
    await registry.run(b, async () => {
      const undo = new CleanupStack();
      const timeout = AbortSignal.timeout(this.d.config.buildTimeoutMs);
      try {
        await Promise.race([
          this.build(b, body, undo, timeout),
          // The step that was running when the time ran out is the one the failure names.
          new Promise<never>((_, rej) => timeout.addEventListener("abort", () => rej(new StepFailed(b.logs.at(-1)?.step ?? "base", `the build timed out after ${Math.round(this.d.config.buildTimeoutMs / 1000)} s (--build-timeout-s)`)))),
        ]);
        registry.log(b, "info", `Build finished in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        registry.finish(b);
      } catch (e) {
        const step = e instanceof StepFailed ? e.step : "finalize";
        const message = e instanceof Error ? e.message : String(e);
        registry.log(b, "error", message, step);
        for (const err of await undo.unwind()) log.warn("cleanup after a failed template build", { build: b.buildID, error: err.message });
        log.warn("template build failed", { template: b.alias, build: b.buildID, step, error: message });
        registry.finish(b, { message, step });
      } finally {
        // Its cache entries and uploads may go now, the least recently used first, if the cache is over its bound.
        this.d.quota.unpinAll(b.buildID);
        this.d.quota.prune();
      }
    });
  }

  private async build(b: Build, body: BuildBody, undo: CleanupStack, signal: AbortSignal): Promise<void> {
    const say = (m: string, step?: string) => this.d.registry.log(b, "info", m, step);
    const base = await this.base(b, body, undo, signal);
    const steps = body.steps;
    const hashes = chain(base.hash, steps);
    // Every entry of this build's steps stays while it runs (the ones it reuses, and the ones it makes: the last is
    // the template's layer).
    for (const h of hashes) this.d.quota.pin(b.buildID, this.cache.entryDir(h));
    const k = cachedPrefix(steps, hashes, body.force ?? false, (h) => this.cache.get(h)?.state.rootfs === base.rootfs);
    let state: BuildState = {
      rootfs: base.rootfs,
      rootfsId: fileId(base.rootfs),
      envVars: { ...base.defaults.envVars },
      user: base.defaults.user ?? E2B_DEFAULT_USER,
      ...(base.defaults.workdir ? { workdir: base.defaults.workdir } : {}),
    };
    let layer = base.layer;
    for (let i = 0; i < k; i++) say(`CACHED [${i + 1}/${steps.length}] ${describe(steps[i]!)}`, String(i + 1));
    for (const h of hashes.slice(0, k)) this.d.quota.touch(this.cache.entryDir(h));
    if (k > 0) ({ layer, state } = this.cache.get(hashes[k - 1]!)!);
    if (k < steps.length) {
      // The build VM and its private template go when the steps are done (or on a failure); cache entries stay.
      const vmUndo = new CleanupStack();
      undo.push("build VM", async () => void (await vmUndo.unwind()));
      const vm = await this.bootBuildVm(b, base, layer, state, vmUndo);
      for (let i = k; i < steps.length; i++) {
        if (signal.aborted) throw new StepFailed(String(i + 1), "the build timed out");
        const s = steps[i]!;
        say(`[${i + 1}/${steps.length}] ${describe(s)}`, String(i + 1));
        state = await this.runStep(b, vm, s, state, String(i + 1));
        // The layer as it is after this step is the cache entry: sync the guest, then copy it while paused.
        await this.exec(b, vm, "sync", { user: "root" }, String(i + 1));
        const tmp = this.cache.stage(hashes[i]!);
        try {
          await this.d.manager.captureLayer(vm.id, join(tmp, "layer.ext4"));
          this.cache.commit(hashes[i]!, state);
        } catch (e) {
          this.cache.discard(hashes[i]!);
          throw new StepFailed(String(i + 1), `caching the step's disk failed: ${e instanceof Error ? e.message : String(e)}`);
        }
        this.d.quota.prune();
      }
      layer = this.cache.get(hashes[steps.length - 1]!)!.layer;
      for (const err of await vmUndo.unwind()) log.warn("cleanup of a build VM", { build: b.buildID, error: err.message });
    }
    // A timed-out build's undo has run (Promise.race in start()): register nothing after it.
    if (signal.aborted) throw new StepFailed("finalize", "the build timed out");
    say("Registering the template", "finalize");
    const row = this.register(b, base, layer, state, body);
    undo.push("registered template", () => void removeTemplate(this.d.state, row.id));
    if (body.startCmd) say(`Starting: ${body.startCmd}${body.readyCmd ? `; waiting for: ${body.readyCmd}` : ""}`, "finalize");
    say("Making the template's ready snapshot", "finalize");
    try {
      await this.d.manager.makeTemplateSnapshot(row);
    } catch (e) {
      throw new StepFailed("finalize", `the template's ready snapshot failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (signal.aborted) throw new StepFailed("finalize", "the build timed out");
    undo.release();
    this.takeName(b, row.id);
  }

  /** The root image and first layer the steps run over: a registered template's, or an OCI image's (cached by
   *  its reference unless the build is forced). */
  private async base(b: Build, body: BuildBody, undo: CleanupStack, signal: AbortSignal): Promise<Base> {
    const say = (m: string) => this.d.registry.log(b, "info", m, "base");
    if (body.fromTemplate) {
      const t = this.d.state.templates.resolve(body.fromTemplate);
      if (!t) throw new StepFailed("base", `template '${body.fromTemplate}' not found: build or register it first`);
      say(`FROM template ${body.fromTemplate} (${t.id})`);
      const f = templateFiles(t);
      return { ...f, defaults: templateDefaults(t), kernel: t.kernel, initrd: t.initrd, cmdlineExtra: t.cmdlineExtra, hash: baseHash({ templateId: t.id, createdAt: t.createdAt }) };
    }
    const image = body.fromImage!;
    const kernelOf = this.d.state.templates.list().find((t) => !t.snapshotOf && existsSync(t.kernel));
    if (!kernelOf) throw new StepFailed("base", "no registered template names a guest kernel to boot the build with: run `onebox template build base` first");
    const hash = baseHash({ image });
    const dir = this.cache.imageDir(hash);
    this.d.quota.pin(b.buildID, dir);
    const files = { rootfs: join(dir, "rootfs.ext4"), layer: join(dir, "layer.ext4") };
    if (body.force || !existsSync(files.rootfs)) {
      say(`FROM ${image}: pulling and unpacking`);
      mkdirSync(this.cache.images, { recursive: true, mode: 0o700 });
      const tmp = mkdtempSync(join(this.cache.images, ".pull-"));
      undo.push("image staging dir", () => rmSync(tmp, { recursive: true, force: true }));
      const reg = body.fromImageRegistry;
      try {
        await buildOciFiles(this.d.state, this.d.config.dataDir, this.d.config.sourceDir, {
          name: `build-${b.templateID}`,
          image,
          access: { ...(reg ? { username: reg.username, password: reg.password } : {}), insecure: isLocalRegistry(image) },
          limits: { ...DEFAULT_OCI_LIMITS, timeoutMs: this.d.config.buildTimeoutMs },
          cpuCount: b.cpuCount,
          memoryMb: b.memoryMb,
          diskSizeMb: 2048,
          outDir: tmp,
        }, { signal, reporter: { begin: (s) => say(`${image}: ${s}`), detail: () => undefined, end: () => undefined, finish: () => undefined } });
      } catch (e) {
        throw new StepFailed("base", e instanceof Error ? e.message : String(e));
      }
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      this.d.quota.prune();
    } else {
      say(`CACHED FROM ${image}`);
      this.d.quota.touch(dir);
    }
    const defaults = templateDefaults({ defaults: await Bun.file(join(dir, DEFAULTS_FILE)).text().catch(() => "{}") });
    return { ...files, defaults: { ...defaults, startCmd: undefined }, kernel: kernelOf.kernel, initrd: kernelOf.initrd, cmdlineExtra: kernelOf.cmdlineExtra, hash };
  }

  /** A sandbox of a private template (the root image + this layer) with the network, for the steps. */
  private async bootBuildVm(b: Build, base: Base, layer: string, state: BuildState, undo: CleanupStack): Promise<{ id: string; socket: string }> {
    // Ephemeral: cold-booted (no snapshot of its own), and swept at the next start if a daemon stopped mid-build.
    const t = this.templateRow(b, newTemplateId(), base, layer, state, [], {}, true);
    undo.push("build template", () => void removeTemplate(this.d.state, t.id));
    this.d.registry.log(b, "info", "Booting the build VM", "base");
    const sb = await this.d.admit({ cpus: t.cpuCount, memoryMib: t.memoryMb }, () => this.d.manager.create({ templateID: t.id, timeoutSec: Math.ceil(this.d.config.buildTimeoutMs / 1000), metadata: { "onebox.build": b.buildID }, envVars: {}, secure: false, allowInternetAccess: true, autoPause: false, autoResume: false }, t)).catch((e: unknown) => {
      throw new StepFailed("base", `the build VM could not start: ${e instanceof Error ? e.message : String(e)}`);
    });
    undo.push("build VM", () => this.d.manager.kill(sb.id).catch(() => undefined));
    const route = this.d.manager.route(sb.id);
    if (!route) throw new StepFailed("base", "the build VM is not running");
    return { id: sb.id, socket: await route.socket(ENVD_PORT) };
  }

  private async runStep(b: Build, vm: { id: string; socket: string }, s: Step, st: BuildState, name: string): Promise<BuildState> {
    const next: BuildState = { ...st, envVars: { ...st.envVars } };
    switch (s.type) {
      case "ENV":
        for (let i = 0; i < s.args.length; i += 2) next.envVars[s.args[i]!] = s.args[i + 1] ?? "";
        return next;
      case "USER":
        await this.exec(b, vm, `id -u ${q(s.args[0]!)} >/dev/null`, { user: "root" }, name, `user '${s.args[0]}' does not exist in the image: add it with a RUN step first`);
        next.user = s.args[0]!;
        return next;
      case "WORKDIR": {
        const dir = s.args[0]!.startsWith("/") ? s.args[0]! : `${workdirOf(st)}/${s.args[0]}`;
        await this.exec(b, vm, `mkdir -p ${q(dir)} && chown ${q(st.user)} ${q(dir)}`, { user: "root" }, name);
        next.workdir = dir;
        return next;
      }
      case "RUN": {
        const user = s.args[1] || st.user;
        await this.exec(b, vm, s.args[0]!, { user, cwd: workdirOf(st), envs: st.envVars }, name);
        return next;
      }
      case "COPY": {
        await this.copy(b, vm, s, st, name);
        return next;
      }
    }
  }

  /** COPY src dest [user] [mode]: the uploaded tar is unpacked in the guest and src (a file, a directory's
   *  contents, or a glob) placed at dest as Docker's COPY does. */
  private async copy(b: Build, vm: { id: string; socket: string }, s: Step, st: BuildState, name: string): Promise<void> {
    const hash = s.filesHash!;
    this.d.uploads.use(hash, b.buildID);
    if (!this.d.uploads.present(hash)) throw new StepFailed(name, `the files of COPY ${s.args[0]} were not uploaded (hash ${hash}): build again`);
    const [src, destRaw, user, mode] = s.args as [string, string, string?, string?];
    const owner = user || st.user;
    const dest = destRaw.startsWith("/") ? destRaw : `${workdirOf(st)}/${destRaw}`;
    const guestTar = `/tmp/.onebox-copy-${hash}.tar`;
    const res = await fetch(`http://sandbox/files?username=root&path=${encodeURIComponent(guestTar)}`, {
      method: "POST",
      body: Bun.file(this.d.uploads.path(hash)),
      headers: { "content-type": "application/octet-stream", authorization: `Basic ${Buffer.from("root:").toString("base64")}` },
      unix: vm.socket,
    });
    if (!res.ok) throw new StepFailed(name, `sending the files of COPY ${src} into the build VM failed: ${res.status} ${(await res.text()).slice(0, 200)}`);
    const script = copyScript({ tar: guestTar, src, dest, owner, mode });
    await this.exec(b, vm, script, { user: "root" }, name);
  }

  /** Runs cmd in the build VM with its output in the build's log; a non-zero exit fails the step. */
  private async exec(b: Build, vm: { socket: string }, cmd: string, o: { user: string; cwd?: string; envs?: Record<string, string> }, step: string, hint?: string): Promise<ExecResult> {
    let r: ExecResult;
    try {
      r = await guestExec(vm.socket, cmd, { ...o, timeoutMs: RUN_STEP_TIMEOUT_MS, onLine: (l, stream) => this.d.registry.log(b, stream === "stderr" ? "warn" : "info", l, step) });
    } catch (e) {
      throw new StepFailed(step, `the build VM's agent could not run the step: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (r.exitCode !== 0 || r.error) {
      const tail = r.tail.slice(-10).join("\n");
      throw new StepFailed(step, `step ${step} failed: \`${cmd.split("\n")[0]!.slice(0, 200)}\` ${r.exitCode >= 0 ? `exited with ${r.exitCode}` : `did not run to its end${r.error ? ` (${r.error})` : ""}`}${hint ? `: ${hint}` : ""}${tail ? `\n${tail}` : ""}`);
    }
    return r;
  }

  /** The built template's row over these files; inserted. */
  private register(b: Build, base: Base, layer: string, st: BuildState, body: BuildBody): TemplateRow {
    const defaults: TemplateDefaults = {
      ...(Object.keys(st.envVars).length ? { envVars: st.envVars } : {}),
      user: st.user,
      ...(st.workdir ? { workdir: st.workdir } : {}),
      ...(body.startCmd ? { startCmd: body.startCmd, runStartCmd: true } : {}),
      ...(body.readyCmd ? { readyCmd: body.readyCmd } : {}),
    };
    return this.templateRow(b, b.templateID, base, layer, st, [], defaults);
  }

  private templateRow(b: Build, id: string, base: Base, layer: string, st: BuildState, aliases: string[], defaults: TemplateDefaults, ephemeral = false): TemplateRow {
    const dir = join(this.d.config.dataDir, "templates", id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      try {
        linkSync(base.rootfs, join(dir, "rootfs.ext4"));
      } catch {
        cloneLayer(base.rootfs, join(dir, "rootfs.ext4"), this.d.config.dataDir);
      }
      cloneLayer(layer, join(dir, "layer.ext4"), this.d.config.dataDir);
      const now = Date.now();
      const row: TemplateRow = {
        id,
        aliases: JSON.stringify(aliases),
        dir,
        kernel: base.kernel,
        initrd: base.initrd,
        cpuCount: b.cpuCount,
        memoryMb: b.memoryMb,
        diskSizeMb: 2048,
        envdVersion: agentEnvdVersion() ?? "0.0.0",
        public: false,
        cmdlineExtra: base.cmdlineExtra,
        readyPort: null,
        snapshotOf: null,
        ephemeral,
        // Set with the build's tags once it is ready (takeName): a row with a build id and no tag is swept.
        buildId: null,
        defaults: JSON.stringify(Object.keys(defaults).length ? defaults : { user: st.user, ...(st.workdir ? { workdir: st.workdir } : {}), ...(Object.keys(st.envVars).length ? { envVars: st.envVars } : {}) }),
        createdAt: now,
        updatedAt: now,
      };
      this.d.state.templates.insert(row);
      return row;
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** The build becomes its tags' (src/templates/tags.ts): with `default`, the name's; the builds they pointed at
   *  go unless something uses them. */
  private takeName(b: Build, id: string): void {
    this.d.state.templates.update(id, { buildId: b.buildID });
    assignTags(this.d.state, b.alias, b.tags, id);
  }
}

function workdirOf(st: BuildState): string {
  return st.workdir ?? (st.user === "root" ? "/root" : st.user === E2B_DEFAULT_USER ? E2B_DEFAULT_WORKDIR : "/");
}

function describe(s: Step): string {
  if (s.type === "ENV") return `ENV ${s.args.filter((_, i) => i % 2 === 0).join(" ")}`;
  return `${s.type} ${s.args.filter(Boolean).join(" ")}`.slice(0, 300);
}


/** 127.0.0.1 and localhost registries speak plain HTTP (the e2e's and a lab's docker-registry). */
function isLocalRegistry(image: string): boolean {
  return /^(127\.0\.0\.1|localhost)(:\d+)?\//.test(image);
}
