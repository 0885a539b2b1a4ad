// The template builder's files (the image scripts and what they copy into images), embedded in dist/onebox and
// extracted, in the checkout's layout, to $DATA/builder/<content hash>/: a built binary needs no source checkout.
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import mkrootfs from "../../scripts/mkrootfs.sh" with { type: "file" };
import mkinitramfs from "../../scripts/mkinitramfs.sh" with { type: "file" };
import fetchKernel from "../../scripts/fetch-kernel.sh" with { type: "file" };
import aptSuite from "../../scripts/apt-suite.sh" with { type: "file" };
import oneboxInit from "../../guest/init/build/onebox-init" with { type: "file" };
import oneboxRunas from "../../guest/init/build/onebox-runas" with { type: "file" };
import agent from "../../dist/guest/agent.js" with { type: "file" };
import interpPackages from "../../guest/interpreter/packages.txt" with { type: "file" };
import interpService from "../../guest/interpreter/service.conf" with { type: "file" };
import bashKernel from "../../guest/interpreter/bash_kernel.py" with { type: "file" };
import charts from "../../guest/interpreter/charts.py" with { type: "file" };
import cloneReseed from "../../guest/interpreter/clone_reseed.py" with { type: "file" };
import contexts from "../../guest/interpreter/contexts.py" with { type: "file" };
import envs from "../../guest/interpreter/envs.py" with { type: "file" };
import execution from "../../guest/interpreter/execution.py" with { type: "file" };
import javaKernel from "../../guest/interpreter/java_kernel.py" with { type: "file" };
import javaRuntime from "../../guest/interpreter/java_runtime.java" with { type: "file" };
import jsCell from "../../guest/interpreter/js_cell.mjs" with { type: "file" };
import jsKernel from "../../guest/interpreter/js_kernel.py" with { type: "file" };
import jsRuntime from "../../guest/interpreter/js_runtime.mjs" with { type: "file" };
import kernelStartup from "../../guest/interpreter/kernel_startup.py" with { type: "file" };
import results from "../../guest/interpreter/results.py" with { type: "file" };
import server from "../../guest/interpreter/server.py" with { type: "file" };
import { isEmbedded } from "../sys/natives.ts";

/** Path in the builder dir (the checkout's layout, which the scripts expect) -> the embedded file and its mode.
 *  guest/interpreter's files are the ones mkrootfs.sh copies by glob (*.py, *.mjs, *.java); a test checks this
 *  list against the checkout, so a new interpreter file cannot be left out. */
export const BUILDER_FILES: Record<string, { embedded: string; mode: number }> = {
  "scripts/mkrootfs.sh": { embedded: mkrootfs, mode: 0o755 },
  "scripts/mkinitramfs.sh": { embedded: mkinitramfs, mode: 0o755 },
  "scripts/fetch-kernel.sh": { embedded: fetchKernel, mode: 0o755 },
  "scripts/apt-suite.sh": { embedded: aptSuite, mode: 0o644 },
  "guest/init/build/onebox-init": { embedded: oneboxInit, mode: 0o755 },
  "guest/init/build/onebox-runas": { embedded: oneboxRunas, mode: 0o755 },
  "dist/guest/agent.js": { embedded: agent, mode: 0o644 },
  "guest/interpreter/packages.txt": { embedded: interpPackages, mode: 0o644 },
  "guest/interpreter/service.conf": { embedded: interpService, mode: 0o644 },
  "guest/interpreter/bash_kernel.py": { embedded: bashKernel, mode: 0o644 },
  "guest/interpreter/charts.py": { embedded: charts, mode: 0o644 },
  "guest/interpreter/clone_reseed.py": { embedded: cloneReseed, mode: 0o644 },
  "guest/interpreter/contexts.py": { embedded: contexts, mode: 0o644 },
  "guest/interpreter/envs.py": { embedded: envs, mode: 0o644 },
  "guest/interpreter/execution.py": { embedded: execution, mode: 0o644 },
  "guest/interpreter/java_kernel.py": { embedded: javaKernel, mode: 0o644 },
  "guest/interpreter/java_runtime.java": { embedded: javaRuntime, mode: 0o644 },
  "guest/interpreter/js_cell.mjs": { embedded: jsCell, mode: 0o644 },
  "guest/interpreter/js_kernel.py": { embedded: jsKernel, mode: 0o644 },
  "guest/interpreter/js_runtime.mjs": { embedded: jsRuntime, mode: 0o644 },
  "guest/interpreter/kernel_startup.py": { embedded: kernelStartup, mode: 0o644 },
  "guest/interpreter/results.py": { embedded: results, mode: 0o644 },
  "guest/interpreter/server.py": { embedded: server, mode: 0o644 },
};

/** Where the image scripts run from, and the mkrootfs.sh arguments that go with it. */
export interface TemplateBuilder {
  /** A directory in the checkout's layout: scripts/mkrootfs.sh, guest/init/build/onebox-init, ... */
  dir: string;
  /** "checkout": ONEBOX_SOURCE_DIR or a run from source; "embedded": extracted from the compiled binary. */
  from: "checkout" | "embedded";
  /** Extra mkrootfs.sh arguments: a compiled onebox is the guest's Bun runtime too (BUN_BE_BUN=1), so a host
   *  with onebox installed from a release needs no Bun of its own. */
  mkrootfsArgs: string[];
}

/** The builder: `sourceDir` (ONEBOX_SOURCE_DIR / --source-dir) when given, which developers use to try script
 *  changes without a rebuild; else the checkout this code runs from; else, in dist/onebox, the embedded files,
 *  extracted once under `dataDir`. */
export async function templateBuilder(dataDir: string, sourceDir?: string): Promise<TemplateBuilder> {
  if (sourceDir) return { dir: sourceDir, from: "checkout", mkrootfsArgs: [] };
  if (!isEmbedded(mkrootfs)) return { dir: join(dirname(mkrootfs), ".."), from: "checkout", mkrootfsArgs: [] };
  const dir = await extractBuilder(join(dataDir, "builder"));
  return { dir, from: "embedded", mkrootfsArgs: ["--bun", process.execPath, "--bun-be-bun"] };
}

/** Writes BUILDER_FILES to `<root>/<hash of their paths, modes and contents>/` unless that is there, and removes
 *  other versions' dirs (an upgraded binary's builder replaces the old one). Written to a temp dir and renamed,
 *  so a concurrent build never sees half the files. */
export async function extractBuilder(root: string, files = BUILDER_FILES): Promise<string> {
  const contents = new Map<string, Uint8Array>();
  const hasher = new Bun.CryptoHasher("sha256");
  for (const [rel, f] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    const bytes = await Bun.file(f.embedded).bytes();
    contents.set(rel, bytes);
    hasher.update(`${rel}\0${f.mode}\0${bytes.length}\0`).update(bytes);
  }
  const name = hasher.digest("hex").slice(0, 16);
  const dir = join(root, name);
  if (existsSync(dir)) return dir;
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const tmp = join(root, `.${name}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  for (const [rel, bytes] of contents) {
    const dest = join(tmp, rel);
    mkdirSync(dirname(dest), { recursive: true, mode: 0o755 });
    writeFileSync(dest, bytes);
    chmodSync(dest, files[rel]!.mode); // not masked by the umask, as writeFileSync's mode is
  }
  try {
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir)) throw e; // else another process extracted the same files first
  }
  for (const other of readdirSync(root)) {
    if (other !== name && !other.startsWith(".")) rmSync(join(root, other), { recursive: true, force: true });
  }
  return dir;
}
