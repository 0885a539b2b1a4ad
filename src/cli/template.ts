// `onebox template ls|add|rm|build|builder|fetch-kernel`: the template records in the database, and their builds.
import type { VmHandle } from "../machine/vm-driver.ts";
import { loadVmDriver } from "../machine/vm-driver.ts";
import { openState, type State, type TemplateRow } from "../store/index.ts";
import { aliasesOf } from "../store/template-store.ts";
import { buildDefaultTemplate, buildLogPath, DEFAULT_TEMPLATES } from "../templates/build-default.ts";
import { BuildError, BuildInterrupted } from "../templates/build-steps.ts";
import { templateBuilder } from "../templates/builder-files.ts";
import { cliProgress } from "../templates/progress.ts";
import { defaultKernelDir } from "../sys/guest-kernel.ts";
import { join } from "node:path";
import { buildTemplateSnapshot } from "../templates/snapshot.ts";
import { envVar, parseConfig } from "../util/config.ts";
import { registerTemplate, removeTemplate } from "../templates/register.ts";
import { snapshotsOver } from "../templates/snapshot.ts";
import { buildOciFiles, buildOciTemplate } from "../templates/oci/build.ts";
import { parseImageRef } from "../templates/oci/image-ref.ts";
import { DEFAULT_OCI_LIMITS, type OciLimits } from "../templates/oci/limits.ts";
import { bool, dataDirOf, int, parseArgs, str, type Args } from "./args.ts";
import { daemonAccess } from "./daemon-access.ts";
import { buildFromDockerfile } from "./template-dockerfile.ts";

const USAGE = `usage: onebox template ls [--json]
       onebox template add --name NAME --from DIR --kernel VMLINUZ [--initrd INITRAMFS]
                           (DIR/defaults.json, if there, gives the env, user, workdir, start command)
                           [--cpus 1] [--memory-mib 512] [--disk-mib 1024] [--cmdline-extra STR]
                           [--ready-port PORT]  (a guest port whose /health must answer before create returns)
       onebox template rm ID|NAME
       onebox template build [base|code-interpreter-v1 ...] [--source-dir DIR] [--no-snapshot]
                             [--run-root /run/onebox] [--pvm-kernel PATH] [--boot-timeout-ms 60000]
           builds default templates with onebox's own scripts/mkrootfs.sh (root, network for debootstrap;
           --source-dir or ONEBOX_SOURCE_DIR: a checkout's scripts instead):
           steps kernel, initramfs, debootstrap, packages, image, register, snapshot; a log file per build;
           cached (a registered template is kept; the debootstrap tree is reused); Ctrl-C removes
           the partial output, rerun to continue
       onebox template build --from-image REF --name NAME [--registry-user U --registry-password P]
                             [--insecure-registry] [--cpus 1] [--memory-mib 512] [--disk-mib 2048]
                             [--max-image-mib 4096] [--max-layers 128] [--max-rootfs-mib 16384]
                             [--timeout-s 1800] [--source-dir DIR] [--no-snapshot] [--out DIR]
           a template from an OCI image (linux/amd64; skopeo + umoci): steps kernel, initramfs, pull,
           unpack, image, register, snapshot; the image's ENV, USER, WORKDIR and ENTRYPOINT+CMD become
           the template's defaults (docs/templates.md "Templates from OCI images"); --out DIR writes
           rootfs.ext4, layer.ext4 and defaults.json there instead (for template add --from DIR)
       onebox template build --dockerfile FILE --name NAME[:TAG] [--cpus 1] [--memory-mib 512] [--no-cache]
                             [--url http://127.0.0.1:3000] [--api-key KEY (default: the admin key)]
           a single-stage Dockerfile, parsed and uploaded as the e2b SDK's Template().fromDockerfile() does
           (COPY sources relative to FILE's directory), built by the running daemon in a build microVM;
           each step is cached (--no-cache rebuilds all); the build's log is printed as it runs
       onebox template builder [--source-dir DIR]
           prints the template builder's directory (the scripts and guest files embedded in onebox,
           extracted to DATA/builder/<hash>; or the checkout's)
       onebox template fetch-kernel [--source-dir DIR]
           installs Debian's cloud kernel as the default guest kernel (DATA/kernels/debian-cloud; apt-get)
options: --data-dir DIR (default /var/lib/onebox)`;

export async function templateCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ["json", "help", "no-snapshot", "insecure-registry", "no-cache"]);
  const [sub, target] = a.positionals;
  if (!sub || bool(a, "help")) {
    console.log(USAGE);
    return sub ? 0 : 2;
  }
  const dataDir = dataDirOf(a);
  const state = openState(dataDir);
  try {
    switch (sub) {
      case "ls":
      case "list": {
        const rows = state.templates.list();
        // A build's tags as "name:tag" (its `default` tag is its bare name, in aliases).
        const tagsOf = (id: string) => state.tags.ofTemplate(id).filter((t) => t.tag !== "default").map((t) => `${t.name}:${t.tag}`);
        if (bool(a, "json")) {
          console.log(JSON.stringify(rows.map((t) => ({ ...t, aliases: aliasesOf(t), tags: tagsOf(t.id) }))));
          return 0;
        }
        console.log(["ID".padEnd(22), "NAMES".padEnd(20), "CPUS", "MEM MiB", "KERNEL"].join(" "));
        for (const t of rows) {
          console.log([t.id.padEnd(22), [...aliasesOf(t), ...tagsOf(t.id)].join(",").padEnd(20), String(t.cpuCount).padEnd(4), String(t.memoryMb).padEnd(7), t.kernel].join(" "));
        }
        return 0;
      }
      case "add": {
        const name = str(a, "name");
        const from = str(a, "from");
        const kernel = str(a, "kernel") ?? envVar("ONEBOX_TEST_KERNEL");
        if (!name || !from || !kernel) {
          console.error(`onebox template add: --name, --from and --kernel are required\n${USAGE}`);
          return 2;
        }
        const cpus = int(a, "cpus") ?? 1;
        if (cpus < 1 || cpus > 2) throw new Error("--cpus must be 1 or 2 (the vmm runs 1 or 2 vCPUs)");
        const row = await registerTemplate(state, dataDir, {
          name,
          from,
          kernel,
          initrd: str(a, "initrd"),
          cpuCount: cpus,
          memoryMb: int(a, "memory-mib") ?? 512,
          diskSizeMb: int(a, "disk-mib") ?? 1024,
          cmdlineExtra: str(a, "cmdline-extra"),
          readyPort: int(a, "ready-port"),
        });
        console.log(bool(a, "json") ? JSON.stringify(row) : `registered template ${row.id} as '${name}'`);
        return 0;
      }
      case "build": {
        const dockerfile = str(a, "dockerfile");
        if (dockerfile !== undefined) {
          const name = str(a, "name");
          if (!name) {
            console.error(`onebox template build --dockerfile: name the template with --name\n${USAGE}`);
            return 2;
          }
          const access = daemonAccess(a, dataDir, "onebox template build --dockerfile");
          if (!access) return 2;
          return await buildFromDockerfile({ file: dockerfile, name, ...access, cpuCount: int(a, "cpus"), memoryMB: int(a, "memory-mib"), noCache: bool(a, "no-cache") });
        }
        const sourceDir = str(a, "source-dir") ?? envVar("ONEBOX_SOURCE_DIR");
        const fromImage = str(a, "from-image");
        const wanted = a.positionals.slice(1);
        if (fromImage !== undefined && (wanted.length || !str(a, "name"))) {
          console.error(`onebox template build --from-image: name the template with --name (and no default template names)\n${USAGE}`);
          return 2;
        }
        const list = fromImage !== undefined ? [] : wanted.length ? DEFAULT_TEMPLATES.filter((t) => wanted.includes(t.name)) : DEFAULT_TEMPLATES;
        const unknown = wanted.filter((w) => !DEFAULT_TEMPLATES.some((t) => t.name === w));
        if (unknown.length) {
          console.error(`onebox template build: unknown default template(s) ${unknown.join(", ")}; known: ${DEFAULT_TEMPLATES.map((t) => t.name).join(", ")}`);
          return 2;
        }
        // The snapshot step boots each template once (a host that cannot boot the guest kernel,
        // e.g. PVM without a PVM kernel, skips it with --no-snapshot: creates then cold-boot).
        let snapshot: ((row: TemplateRow) => Promise<void>) | undefined;
        const vms = new Set<VmHandle>();
        if (!bool(a, "no-snapshot")) {
          const drv = await loadVmDriver();
          if (!drv.ok) throw new Error(`cannot boot templates to snapshot them: ${drv.problem}; pass --no-snapshot to skip`);
          const config = parseConfig({ dataDir, runRoot: str(a, "run-root"), pvmKernel: str(a, "pvm-kernel") ?? envVar("ONEBOX_PVM_KERNEL"), bootTimeoutMs: int(a, "boot-timeout-ms") });
          snapshot = async (row) => void (await buildTemplateSnapshot(config, drv.driver, row, vms));
        }
        // Ctrl-C: stop the running step, remove its partial output, leave the caches for a rerun.
        const abort = new AbortController();
        const onSigint = () => {
          abort.abort();
          for (const vm of vms) void vm.stop().catch(() => undefined); // a snapshot step's VM
        };
        process.on("SIGINT", onSigint);
        process.on("SIGTERM", onSigint);
        try {
          if (fromImage !== undefined) return await buildFromImage(state, dataDir, sourceDir, a, fromImage, abort.signal, snapshot);
          for (const t of list) {
            if (state.templates.resolve(t.name)) {
              console.log(`template '${t.name}' exists (cached); remove it first to rebuild (onebox template rm ${t.name})`);
              continue;
            }
            const logFile = buildLogPath(dataDir, t.name);
            console.log(`building '${t.name}' (log: ${logFile})`);
            try {
              const row = await buildDefaultTemplate(state, dataDir, sourceDir, t, { reporter: cliProgress(t.name), signal: abort.signal, logFile, snapshot });
              console.log(`registered template ${row.id} as '${t.name}'`);
            } catch (e) {
              return buildFailed(e);
            }
          }
          return 0;
        } finally {
          process.off("SIGINT", onSigint);
          process.off("SIGTERM", onSigint);
        }
      }
      case "builder": {
        const b = await templateBuilder(dataDir, str(a, "source-dir") ?? envVar("ONEBOX_SOURCE_DIR"));
        console.log(bool(a, "json") ? JSON.stringify(b) : `${b.dir} (${b.from})`);
        return 0;
      }
      case "fetch-kernel": {
        const b = await templateBuilder(dataDir, str(a, "source-dir") ?? envVar("ONEBOX_SOURCE_DIR"));
        const p = Bun.spawn(["bash", join(b.dir, "scripts", "fetch-kernel.sh"), defaultKernelDir(dataDir)], { stdio: ["inherit", "inherit", "inherit"] });
        return await p.exited;
      }
      case "rm":
      case "remove": {
        if (!target) {
          console.error("onebox template rm: name the template by id or name");
          return 2;
        }
        const t = state.templates.resolve(target);
        const over = t ? snapshotsOver(t, state.templates.list()) : [];
        if (over.length > 0) {
          console.error(`onebox template rm: snapshots ${over.join(", ")} are diffs over '${target}''s snapshot: delete them first`);
          return 1;
        }
        if (!removeTemplate(state, target)) {
          console.error(`onebox template rm: no template '${target}' (see \`onebox template ls\`)`);
          return 1;
        }
        console.log(`removed template ${target}`);
        return 0;
      }
      default:
        console.error(`onebox template: unknown subcommand '${sub}'\n${USAGE}`);
        return 2;
    }
  } finally {
    state.close();
  }
}

const MiB = 1024 * 1024;

/** `template build --from-image`: one OCI build, its failure shown like a default build's. */
async function buildFromImage(state: State, dataDir: string, sourceDir: string | undefined, a: Args, image: string, signal: AbortSignal, snapshot: ((row: TemplateRow) => Promise<void>) | undefined): Promise<number> {
  const name = str(a, "name")!;
  const cpus = int(a, "cpus") ?? 1;
  if (cpus < 1 || cpus > 2) throw new Error("--cpus must be 1 or 2 (the vmm runs 1 or 2 vCPUs)");
  const limits: OciLimits = {
    maxImageBytes: (int(a, "max-image-mib") ?? DEFAULT_OCI_LIMITS.maxImageBytes / MiB) * MiB,
    maxLayers: int(a, "max-layers") ?? DEFAULT_OCI_LIMITS.maxLayers,
    maxRootfsBytes: (int(a, "max-rootfs-mib") ?? DEFAULT_OCI_LIMITS.maxRootfsBytes / MiB) * MiB,
    timeoutMs: (int(a, "timeout-s") ?? DEFAULT_OCI_LIMITS.timeoutMs / 1000) * 1000,
  };
  parseImageRef(image); // a bad reference is refused before a build starts (and names a log)
  const logFile = buildLogPath(dataDir, name);
  console.log(`building '${name}' from ${image} (log: ${logFile})`);
  const input = {
    name,
    image,
    access: { username: str(a, "registry-user"), password: str(a, "registry-password"), insecure: bool(a, "insecure-registry") },
    limits,
    cpuCount: cpus,
    memoryMb: int(a, "memory-mib") ?? 512,
    diskSizeMb: int(a, "disk-mib") ?? 2048,
  };
  const opts = { reporter: cliProgress(name), signal, logFile, snapshot };
  try {
    const outDir = str(a, "out");
    if (outDir !== undefined) {
      await buildOciFiles(state, dataDir, sourceDir, { ...input, outDir }, opts);
      console.log(`wrote rootfs.ext4, layer.ext4 and defaults.json to ${outDir} (register them with onebox template add --from ${outDir})`);
      return 0;
    }
    const row = await buildOciTemplate(state, dataDir, sourceDir, input, opts);
    console.log(bool(a, "json") ? JSON.stringify({ ...row, aliases: aliasesOf(row), defaults: JSON.parse(row.defaults) }) : `registered template ${row.id} as '${name}'`);
    return 0;
  } catch (e) {
    return buildFailed(e);
  }
}

/** The exit status of a build that failed, said on stderr: 130 interrupted, 1 failed (with its log's last lines);
 *  anything else is not a build failure and is thrown on. */
function buildFailed(e: unknown): number {
  if (e instanceof BuildInterrupted) {
    console.error(e.message);
    return 130;
  }
  if (e instanceof BuildError) {
    console.error(`${e.message}\nlast lines of the log:\n${e.logTail.map((l) => "  " + l).join("\n")}`);
    return 1;
  }
  throw e;
}
