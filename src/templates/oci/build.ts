// `onebox template build --from-image`: an OCI image becomes a template like the default ones. Steps:
// kernel and initramfs (shared with the default builds), pull (skopeo: manifest checked against the
// caps, then the linux/amd64 image into a local OCI layout), unpack (umoci: layers and whiteouts),
// image (scripts/mkrootfs.sh --variant tree: onebox's user, agent, Bun and its own libc), register
// (with the image's ENV, USER, WORKDIR, ENTRYPOINT + CMD as the template's defaults), snapshot.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { State, TemplateRow } from "../../store/index.ts";
import { badRequest } from "../../util/errors.ts";
import { buildLogPath, kernelSteps, type BuildOptions } from "../build-default.ts";
import { BuildError, BuildInterrupted, logTail, StepRun } from "../build-steps.ts";
import { templateBuilder } from "../builder-files.ts";
import { LogProgress } from "../progress.ts";
import { checkTemplateName, registerTemplate, removeTemplate } from "../register.ts";
import { ensureWorkdir, imageDefaults } from "./defaults.ts";
import { parseImageRef } from "./image-ref.ts";
import { readImage } from "./layout.ts";
import { mib, type OciLimits } from "./limits.ts";
import { copyArgv, inspectImage, LAYOUT_TAG, skopeoFiles, type RegistryAccess } from "./skopeo.ts";

export const OCI_BUILD_STEPS = ["kernel", "initramfs", "pull", "unpack", "image", "register"] as const;
/** With an output dir: the template's files only, for `onebox template add --from DIR` elsewhere. */
export const OCI_OUTPUT_STEPS = ["pull", "unpack", "image", "output"] as const;
/** Beside rootfs.ext4 and layer.ext4 in an output dir: the template's defaults, read by registerTemplate. */
export const DEFAULTS_FILE = "defaults.json";

export interface OciBuildInput {
  name: string;
  /** [registry[:port]/]name[:tag][@digest] */
  image: string;
  access: RegistryAccess;
  limits: OciLimits;
  cpuCount: number;
  memoryMb: number;
  diskSizeMb: number;
  /** Write rootfs.ext4, layer.ext4 and defaults.json here instead of registering (no kernel steps). */
  outDir?: string;
}

/** The build's private working dir (layout, unpacked tree, images, credentials): always removed at the end. */
export function ociBuildDir(dataDir: string, name: string): string {
  return join(dataDir, "templates", `.build-${name}`);
}

/** Disk bytes of a tree (du -sb, one file system). */
async function treeBytes(run: StepRun, dir: string): Promise<number> {
  const out = await run.capture(["du", "-sxb", dir], { label: "du" });
  return Number(out.split("\t")[0]);
}

/** Builds the template from input.image and registers it as input.name. */
export async function buildOciTemplate(state: State, dataDir: string, sourceDir: string | undefined, input: Omit<OciBuildInput, "outDir">, o: BuildOptions = {}): Promise<TemplateRow> {
  return (await buildOci(state, dataDir, sourceDir, input, o))!;
}

/** Builds the template's files (rootfs.ext4, layer.ext4, defaults.json) into outDir, for `template add --from`. */
export async function buildOciFiles(state: State, dataDir: string, sourceDir: string | undefined, input: OciBuildInput & { outDir: string }, o: BuildOptions = {}): Promise<void> {
  await buildOci(state, dataDir, sourceDir, input, o);
}

async function buildOci(state: State, dataDir: string, sourceDir: string | undefined, input: OciBuildInput, o: BuildOptions): Promise<TemplateRow | null> {
  const image = parseImageRef(input.image);
  if (input.outDir === undefined) checkTemplateName(state, input.name);
  else if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(input.name)) throw badRequest(`build name '${input.name}' must be lowercase letters, digits, '.', '_' or '-'`);
  const logFile = o.logFile ?? buildLogPath(dataDir, input.name);
  mkdirSync(dirname(logFile), { recursive: true, mode: 0o700 });
  const steps = input.outDir !== undefined ? OCI_OUTPUT_STEPS : o.snapshot ? [...OCI_BUILD_STEPS, "snapshot"] : OCI_BUILD_STEPS;
  // The build timeout stops the running command like Ctrl-C does, and is reported as a failure.
  const timeout = AbortSignal.timeout(input.limits.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  const run = new StepRun({ template: input.name, steps, logFile, reporter: o.reporter ?? new LogProgress(input.name), signal });
  const work = ociBuildDir(dataDir, input.name);
  try {
    return await run.run(async () => {
      const kernel = input.outDir === undefined ? await kernelSteps(run, dataDir, sourceDir) : null;
      run.begin("pull");
      rmSync(work, { recursive: true, force: true }); // a build killed with SIGKILL left it
      mkdirSync(work, { recursive: true, mode: 0o700 });
      run.onFailure("build dir", () => rmSync(work, { recursive: true, force: true }));
      const files = skopeoFiles(work, image, input.access);
      const want = await inspectImage(run, image, input.access, files, input.limits);
      run.log(`${image.ref}: ${want.layers} layers, ${mib(want.bytes)} compressed`);
      const layout = join(work, "oci");
      await run.spawn(copyArgv(image, input.access, files, layout), { label: "skopeo copy" });
      // The copy is what counts (a tag can move between inspect and copy): check it again.
      const got = readImage(layout);
      if (got.layers > input.limits.maxLayers) throw new Error(`${image.ref} has ${got.layers} layers; the cap is ${input.limits.maxLayers} (--max-layers)`);
      if (got.layerBytes > input.limits.maxImageBytes) throw new Error(`${image.ref} is ${mib(got.layerBytes)} compressed; the cap is ${mib(input.limits.maxImageBytes)} (--max-image-mib)`);
      const platform = `${got.config.os ?? "?"}/${got.config.architecture ?? "?"}`;
      if (platform !== "linux/amd64") throw new Error(`${image.ref} is a ${platform} image; onebox runs linux/amd64`);

      run.begin("unpack");
      const rootfs = join(work, "rootfs");
      await run.spawn(["umoci", "raw", "unpack", "--image", `${layout}:${LAYOUT_TAG}`, rootfs], { label: "umoci raw unpack" });
      rmSync(layout, { recursive: true, force: true }); // the layers are not needed any more: halve the disk held
      const bytes = await treeBytes(run, rootfs);
      if (bytes > input.limits.maxRootfsBytes) throw new Error(`${image.ref} unpacks to ${mib(bytes)}; the cap is ${mib(input.limits.maxRootfsBytes)} (--max-rootfs-mib)`);
      const defaults = imageDefaults(got.config, rootfs);
      if (defaults.workdir) ensureWorkdir(rootfs, defaults.workdir);
      run.log(`unpacked ${mib(bytes)}; template defaults ${JSON.stringify({ ...defaults, envVars: Object.keys(defaults.envVars ?? {}) })}`);

      run.begin("image");
      const out = join(work, "out");
      const builder = kernel?.builder ?? (await templateBuilder(dataDir, sourceDir));
      await run.spawn(["nice", "bash", join(builder.dir, "scripts", "mkrootfs.sh"), "--out", out, "--variant", "tree", "--tree", rootfs, ...builder.mkrootfsArgs], { cwd: builder.dir, label: "mkrootfs.sh" });
      rmSync(rootfs, { recursive: true, force: true });
      writeFileSync(join(out, DEFAULTS_FILE), JSON.stringify(defaults) + "\n");
      if (!kernel) {
        run.begin("output");
        const dest = input.outDir!;
        mkdirSync(dest, { recursive: true });
        // cp keeps the 2 GiB layer sparse; a half-copied output is not left behind.
        run.onFailure("output files", () => {
          for (const f of ["rootfs.ext4", "layer.ext4", DEFAULTS_FILE]) rmSync(join(dest, f), { force: true });
        });
        await run.spawn(["cp", "--sparse=always", "--reflink=auto", ...["rootfs.ext4", "layer.ext4", DEFAULTS_FILE].map((f) => join(out, f)), dest], { label: "cp" });
        rmSync(work, { recursive: true, force: true });
        return null;
      }
      const row = await run.step("register", () =>
        registerTemplate(state, dataDir, { name: input.name, from: out, kernel: kernel.kernel.path, initrd: kernel.initrd, cpuCount: input.cpuCount, memoryMb: input.memoryMb, diskSizeMb: input.diskSizeMb, defaults }),
      );
      rmSync(work, { recursive: true, force: true });
      if (o.snapshot) {
        run.onFailure("registered template", () => void removeTemplate(state, row.id));
        await run.step("snapshot", () => o.snapshot!(row));
      }
      return row;
    });
  } catch (e) {
    if (e instanceof BuildInterrupted && timeout.aborted && !o.signal?.aborted) {
      throw new BuildError(input.name, e.step, `timed out after ${input.limits.timeoutMs >= 1000 ? `${Math.round(input.limits.timeoutMs / 1000)} s` : `${input.limits.timeoutMs} ms`} (--timeout-s)`, logFile, logTail(logFile));
    }
    throw e;
  }
}
