// Registers a built template image (scripts/mkrootfs.sh output) under $DATA/templates/<id>/.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { agentEnvdVersion } from "../machine/envd-version.ts";
import type { State, TemplateRow } from "../store/index.ts";
import { TemplateDefaults } from "../store/template-defaults.ts";
import { aliasesOf } from "../store/template-store.ts";
import { CleanupStack } from "../util/cleanup-stack.ts";
import { badRequest, conflict } from "../util/errors.ts";
import { newTemplateId } from "../util/ids.ts";

export interface RegisterInput {
  name: string;
  /** Directory with rootfs.ext4 and layer.ext4. */
  from: string;
  kernel: string;
  initrd?: string;
  cpuCount: number;
  memoryMb: number;
  diskSizeMb: number;
  cmdlineExtra?: string;
  /** Guest port whose GET /health must answer before create returns. */
  readyPort?: number;
  /** Env, user, workdir and start command of the template's sandboxes (an OCI image's config). */
  defaults?: TemplateDefaults;
}

/** A name a new template may take: well formed and free. Builds check it before their long steps too. */
export function checkTemplateName(state: State, name: string): void {
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name)) {
    throw badRequest(`template name '${name}' must be lowercase letters, digits, '.', '_' or '-'`);
  }
  if (state.tags.ofName(name).length > 0 || state.templates.list().some((t) => aliasesOf(t).includes(name))) {
    throw conflict(`a template named '${name}' exists: remove it first with \`onebox template rm ${name}\``);
  }
}

/** DIR/defaults.json, written beside the images by `template build --from-image --out DIR`; none: {}. */
function readDefaultsFile(dir: string): TemplateDefaults {
  const f = join(dir, "defaults.json");
  if (!existsSync(f)) return {};
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(f, "utf8"));
  } catch {
    throw badRequest(`${f} is not JSON: rebuild it with \`onebox template build --from-image IMAGE --out ${dir}\``);
  }
  const r = TemplateDefaults.safeParse(v);
  if (!r.success) throw badRequest(`${f} is not valid (${r.error.issues[0]?.path.join(".")}: ${r.error.issues[0]?.message}): rebuild it or remove it`);
  return r.data;
}

export async function registerTemplate(state: State, dataDir: string, input: RegisterInput): Promise<TemplateRow> {
  checkTemplateName(state, input.name);
  for (const f of ["rootfs.ext4", "layer.ext4"]) {
    if (!existsSync(join(input.from, f))) throw badRequest(`${join(input.from, f)} is missing: build the image with scripts/mkrootfs.sh`);
  }
  if (!existsSync(input.kernel)) throw badRequest(`kernel ${input.kernel} does not exist`);
  if (input.initrd && !existsSync(input.initrd)) throw badRequest(`initramfs ${input.initrd} does not exist: build it with scripts/mkinitramfs.sh`);

  const defaults = input.defaults ?? readDefaultsFile(input.from);
  const id = newTemplateId();
  const dir = join(dataDir, "templates", id);
  const undo = new CleanupStack();
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    undo.push("template dir", () => rmSync(dir, { recursive: true, force: true }));
    for (const f of ["rootfs.ext4", "layer.ext4"]) {
      const cp = Bun.spawnSync(["cp", "--reflink=auto", "--sparse=always", join(input.from, f), join(dir, f)], { stderr: "pipe" });
      if (cp.exitCode !== 0) throw new Error(`copying ${f} failed: ${cp.stderr.toString().trim()}; check free space in ${dataDir}`);
    }
    const now = Date.now();
    const row: TemplateRow = {
      readyPort: input.readyPort ?? null,
      snapshotOf: null,
      ephemeral: false,
      defaults: JSON.stringify(defaults),
      buildId: null,
      id,
      aliases: JSON.stringify([input.name]),
      dir,
      kernel: resolve(input.kernel),
      initrd: input.initrd ? resolve(input.initrd) : null,
      cpuCount: input.cpuCount,
      memoryMb: input.memoryMb,
      diskSizeMb: input.diskSizeMb,
      envdVersion: agentEnvdVersion() ?? "0.0.0",
      public: false,
      cmdlineExtra: input.cmdlineExtra ?? "",
      createdAt: now,
      updatedAt: now,
    };
    state.templates.insert(row);
    undo.release();
    return row;
  } catch (e) {
    await undo.unwind();
    throw e;
  }
}

export function removeTemplate(state: State, idOrName: string): boolean {
  const t = state.templates.resolve(idOrName);
  if (!t) return false;
  state.templates.delete(t.id);
  rmSync(t.dir, { recursive: true, force: true });
  return true;
}
