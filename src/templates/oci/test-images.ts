// Test support: OCI images made by the tests themselves with umoci (one layer per function, so later
// layers' deletions become whiteouts), from Debian's own files: a musl image (busybox-static and
// musl's loader, no glibc) and a glibc image (the host's bash and the libraries it links, usrmerged).
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export interface ImageSpec {
  /** Each builds one layer by changing the tree (files added, changed or removed). */
  layers: ((root: string) => void)[];
  env?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string[];
  cmd?: string[];
}

function sh(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}`);
}

/** An OCI layout at dir/layout with the image tagged `t`; returns the layout path. */
export function makeImage(dir: string, spec: ImageSpec): string {
  const layout = join(dir, "layout");
  const bundle = join(dir, "bundle");
  sh(["umoci", "init", "--layout", layout]);
  sh(["umoci", "new", "--image", `${layout}:t`]);
  sh(["umoci", "unpack", "--image", `${layout}:t`, bundle]);
  for (const layer of spec.layers) {
    layer(join(bundle, "rootfs"));
    sh(["umoci", "repack", "--refresh-bundle", "--image", `${layout}:t`, bundle]);
  }
  const c: string[] = [];
  for (const e of spec.env ?? []) c.push("--config.env", e);
  if (spec.workdir) c.push("--config.workingdir", spec.workdir);
  if (spec.user) c.push("--config.user", spec.user);
  for (const a of spec.entrypoint ?? []) c.push("--config.entrypoint", a);
  for (const a of spec.cmd ?? []) c.push("--config.cmd", a);
  if (c.length) sh(["umoci", "config", "--image", `${layout}:t`, ...c]);
  return layout;
}

function put(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

/** busybox-static as /bin/sh and friends, musl's loader and libc: no glibc anywhere. */
export function muslTree(root: string): void {
  mkdirSync(join(root, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", join(root, "bin", "busybox"));
  Bun.spawnSync(["chmod", "0755", join(root, "bin", "busybox")]);
  for (const a of ["sh", "ls", "cat", "id", "env", "pwd"]) symlinkSync("busybox", join(root, "bin", a));
  mkdirSync(join(root, "lib"), { recursive: true });
  copyFileSync("/lib/ld-musl-x86_64.so.1", join(root, "lib", "ld-musl-x86_64.so.1"));
  put(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  put(root, "etc/group", "root:x:0:\n");
}

/** The host's bash with its glibc, laid out usrmerged (/bin -> usr/bin), and a user `app` with uid 1000. */
export function glibcTree(root: string): void {
  for (const d of ["usr/bin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "etc", "root"]) mkdirSync(join(root, d), { recursive: true });
  for (const [l, t] of [["bin", "usr/bin"], ["lib", "usr/lib"], ["lib64", "usr/lib64"]] as const) symlinkSync(t, join(root, l));
  copyFileSync("/usr/bin/bash", join(root, "usr/bin/bash"));
  Bun.spawnSync(["chmod", "0755", join(root, "usr/bin/bash")]);
  symlinkSync("bash", join(root, "usr/bin/sh"));
  const ldd = Bun.spawnSync(["ldd", "/usr/bin/bash"]).stdout.toString();
  for (const lib of ldd.match(/\/\S+/g) ?? []) {
    const dest = join(root, "usr", lib.replace(/^\/usr\//, "/").replace(/^\//, ""));
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(lib, dest);
  }
  put(root, "etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000:app:/srv/app:/bin/bash\n");
  put(root, "etc/group", "root:x:0:\napp:x:1000:\n");
  mkdirSync(join(root, "srv/app"), { recursive: true });
}
