// mkrootfs.sh's edit of Debian's /etc/profile (PROFILE_EUID_SED): the same PATH for root and a user, under bash
// and under sh, and no `id` process under bash (what a `bash -l -c` per command paid for).
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureTestUser } from "../guest/agent/test-harness.ts";

// base-files' /etc/profile as Debian bookworm (and the images mkrootfs.sh builds from it) ships it.
const DEBIAN_PROFILE = `# /etc/profile: system-wide .profile file for the Bourne shell (sh(1))
# and Bourne compatible shells (bash(1), ksh(1), ash(1), ...).

if [ "$(id -u)" -eq 0 ]; then
  PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
else
  PATH="/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
fi
export PATH

if [ "\${PS1-}" ]; then
  if [ "\${BASH-}" ] && [ "$BASH" != "/bin/sh" ]; then
    # The file bash.bashrc already sets the default PS1.
    # PS1='\\h:\\w\\$ '
    if [ -f /etc/bash.bashrc ]; then
      . /etc/bash.bashrc
    fi
  else
    if [ "$(id -u)" -eq 0 ]; then
      PS1='# '
    else
      PS1='$ '
    fi
  fi
fi
`;

const dir = mkdtempSync(join(tmpdir(), "obx-profile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sedExpr(): string {
  const m = /^PROFILE_EUID_SED='(.*)'$/m.exec(readFileSync(join(import.meta.dir, "mkrootfs.sh"), "utf8"));
  if (!m) throw new Error("scripts/mkrootfs.sh has no PROFILE_EUID_SED='...' line");
  return m[1]!;
}

test("the edited /etc/profile gives the same PATH as Debian's, and bash no longer runs id for it", () => {
  ensureTestUser();
  chmodSync(dir, 0o755);
  const stock = join(dir, "profile.stock");
  const edited = join(dir, "profile.edited");
  writeFileSync(stock, DEBIAN_PROFILE);
  const sed = Bun.spawnSync(["sed", "-e", sedExpr(), stock]);
  expect(sed.exitCode).toBe(0);
  writeFileSync(edited, sed.stdout);
  // An `id` first in PATH that notes each call, then answers as the real one.
  const bin = join(dir, "bin");
  Bun.spawnSync(["mkdir", "-p", bin]);
  writeFileSync(join(bin, "id"), `#!/bin/sh\necho "$$" >>"$IDLOG"\nexec /usr/bin/id "$@"\n`, { mode: 0o755 });
  const uid = Number(Bun.spawnSync(["id", "-u", "user"]).stdout.toString());
  const gid = Number(Bun.spawnSync(["id", "-g", "user"]).stdout.toString());

  const source = (shell: string, file: string, asUser: boolean, log: string, ps1 = false) => {
    writeFileSync(log, "");
    chmodSync(log, 0o666);
    const r = Bun.spawnSync([shell, "-c", `. ${file}; printf '%s|%s' "$PATH" "\${PS1-}"`], {
      env: { PATH: `${bin}:/usr/bin:/bin`, IDLOG: log, ...(ps1 ? { PS1: "x" } : {}) },
      ...(asUser ? { uid, gid } : {}),
    });
    expect(r.exitCode).toBe(0);
    return { out: r.stdout.toString(), idCalls: readFileSync(log, "utf8").split("\n").filter(Boolean).length };
  };
  for (const asUser of [false, true]) {
    for (const shell of ["bash", "sh"]) {
      for (const ps1 of [false, true]) {
        const a = source(shell, stock, asUser, join(dir, "a.log"), ps1);
        const b = source(shell, edited, asUser, join(dir, "b.log"), ps1);
        expect(b.out).toBe(a.out);
        expect(a.idCalls).toBeGreaterThan(0);
        if (shell === "bash") expect(b.idCalls).toBe(0);
      }
    }
    expect(source("bash", edited, asUser, join(dir, "c.log")).out.split("|")[0]).toBe(
      asUser ? "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games" : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
  }
});
