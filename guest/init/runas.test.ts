// onebox-runas (guest/init/tools/onebox-runas.c), the agent's way to start a command as a user: ids and groups set,
// PATH searched, bad arguments refused before anything changes (exit 126), a missing program 127.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";

const RUNAS = join(import.meta.dir, "build", "onebox-runas");
const run = (...args: string[]) => {
  if (!existsSync(RUNAS)) throw new Error(`${RUNAS} is missing: run \`bun run build\` (or make -C guest/init) first`);
  const r = Bun.spawnSync([RUNAS, ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/bin:/bin" } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

test.skipIf(process.getuid?.() !== 0)("runs the program with the uid, gid and supplementary groups given, found through PATH", () => {
  expect(run("65534", "65534", "65534,100", "--", "sh", "-c", "id -u; id -g; id -G").out).toBe("65534\n65534\n65534 100\n");
  expect(run("1", "2", "-", "--", "id", "-G").out).toBe("2\n"); // no supplementary groups: only the primary one
  expect(run("1", "2", "-", "--", "sh", "-c", "cat /proc/self/status | grep -E '^(Uid|Gid)'").out).toBe("Uid:\t1\t1\t1\t1\nGid:\t2\t2\t2\t2\n");
});

test("refuses what is not a plain decimal id, and exits as a shell would", () => {
  for (const bad of [["-1", "0", "-"], ["0", "", "-"], ["+1", "0", "-"], ["4294967295", "0", "-"], ["1", "1", "1,,x"], ["1 ", "1", "-"]]) {
    const r = run(...bad, "--", "true");
    expect(r.code).toBe(126);
    expect(r.err).toContain("onebox-runas:");
  }
  expect(run("0", "0", "-", "true").code).toBe(126); // no "--"
  expect(run("0", "0", "-", "--").code).toBe(126); // no program
  if (process.getuid?.() === 0) expect(run("0", "0", "-", "--", "no-such-program-here").code).toBe(127);
});
