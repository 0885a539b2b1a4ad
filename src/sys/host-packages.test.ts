// The Debian packages onebox names for its run time: each installed by scripts/install-deps.sh (the CI and a build
// from source), found by its file, and named with an apt command when missing.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { aptCommand, HOST_PACKAGES, missingHostPackages } from "./host-packages.ts";

test("every package onebox runs is in scripts/install-deps.sh's production list (not only TEST_PKGS)", () => {
  const deps = readFileSync(join(import.meta.dir, "../../scripts/install-deps.sh"), "utf8");
  const pkgs = /^PKGS=\(([^)]*)\)/m.exec(deps)![1]!.split(/\s+/).filter(Boolean);
  for (const p of HOST_PACKAGES) expect(pkgs).toContain(p.name);
});

test("a package is missing when its command or file is not there, and the fix names it", () => {
  const fake = [
    { name: "bash", provides: "bash", why: "x" },
    { name: "no-such-package", provides: "no-such-command-onebox", why: "y" },
    { name: "no-such-lib", provides: "/nonexistent/libnothing.so.1", why: "z" },
  ];
  expect(missingHostPackages(fake).map((p) => p.name)).toEqual(["no-such-package", "no-such-lib"]);
  expect(aptCommand(missingHostPackages(fake))).toBe("apt-get install -y --no-install-recommends no-such-package no-such-lib");
});

test("this host (the CI's, set up by install-deps.sh) has them all", () => {
  expect(missingHostPackages().map((p) => p.name)).toEqual([]);
});

test("`onebox doctor --packages` prints the list, one a line (install.sh installs it)", () => {
  const r = Bun.spawnSync(["bun", join(import.meta.dir, "../main.ts"), "doctor", "--packages"]);
  expect(r.exitCode).toBe(0);
  expect(r.stdout.toString()).toBe(HOST_PACKAGES.map((p) => p.name).join("\n") + "\n");
});
