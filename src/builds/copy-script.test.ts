// Runs the COPY step's script with this host's bash, tar and coreutils (as the build VM runs it, as root) on a tar
// made like the SDK's: a file to a path or into a dir, a directory's contents, a glob, owner and mode, no match.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyScript, globWord } from "./copy-script.ts";

let root: string;
let ctx: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "obx-copy-"));
  ctx = join(root, "ctx");
  mkdirSync(join(ctx, "dir", "sub"), { recursive: true });
  writeFileSync(join(ctx, "one.txt"), "one\n");
  writeFileSync(join(ctx, "dir", "a.txt"), "a\n");
  writeFileSync(join(ctx, "dir", "b.md"), "b\n");
  writeFileSync(join(ctx, "dir", ".hidden"), "h\n");
  writeFileSync(join(ctx, "dir", "sub", "c.txt"), "c\n");
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The SDK's tar: the matched files relative to the context (gzipped), then the script as the build VM runs it. */
function copy(src: string, dest: string, o: { owner?: string; mode?: string; members?: string[] } = {}): { code: number; err: string } {
  const tar = join(root, `${Math.random().toString(36).slice(2)}.tar`);
  const mk = Bun.spawnSync(["tar", "-czf", tar, "-C", ctx, ...(o.members ?? [src])]);
  if (mk.exitCode !== 0) throw new Error(mk.stderr.toString());
  const r = Bun.spawnSync(["bash", "-c", copyScript({ tar, src, dest, owner: o.owner ?? "root", mode: o.mode })], { stderr: "pipe" });
  expect(existsSync(tar)).toBe(false); // the script removes the upload
  return { code: r.exitCode ?? -1, err: r.stderr.toString() };
}

test("a file goes to dest, or into dest when it ends in / or is a directory", () => {
  expect(copy("one.txt", join(root, "o1", "renamed.txt")).code).toBe(0);
  expect(readFileSync(join(root, "o1", "renamed.txt"), "utf8")).toBe("one\n");
  expect(copy("one.txt", join(root, "o2") + "/").code).toBe(0);
  expect(readFileSync(join(root, "o2", "one.txt"), "utf8")).toBe("one\n");
  mkdirSync(join(root, "o3"));
  expect(copy("one.txt", join(root, "o3")).code).toBe(0);
  expect(readFileSync(join(root, "o3", "one.txt"), "utf8")).toBe("one\n");
});

test("a directory's contents go into dest (hidden files and subdirs too)", () => {
  expect(copy("dir", join(root, "d1")).code).toBe(0);
  for (const f of ["a.txt", "b.md", ".hidden", "sub/c.txt"]) expect(existsSync(join(root, "d1", f))).toBe(true);
  expect(existsSync(join(root, "d1", "dir"))).toBe(false);
});

test("a glob picks its matches only", () => {
  expect(copy("dir/*.txt", join(root, "g1") + "/", { members: ["dir/a.txt"] }).code).toBe(0);
  expect(existsSync(join(root, "g1", "a.txt"))).toBe(true);
  expect(existsSync(join(root, "g1", "b.md"))).toBe(false);
  expect(globWord("dir/*.txt")).toBe("'dir/'*'.txt'");
  expect(globWord("./a b/")).toBe("'a b'");
  expect(globWord("x'; rm -rf / #")).toBe(`'x'\\''; rm -rf / #'`);
});

test("owner and mode apply to what was copied, not to what dest held before", () => {
  const dest = join(root, "own");
  mkdirSync(dest);
  writeFileSync(join(dest, "before"), "x");
  expect(copy("dir", dest, { owner: "nobody", mode: "0640" }).code).toBe(0);
  expect(statSync(join(dest, "a.txt")).uid).toBe(Number(Bun.spawnSync(["id", "-u", "nobody"]).stdout.toString()));
  expect(statSync(join(dest, "a.txt")).mode & 0o777).toBe(0o640);
  expect(statSync(join(dest, "sub", "c.txt")).uid).not.toBe(0);
  expect(statSync(join(dest, "before")).uid).toBe(0);
  expect(statSync(dest).uid).toBe(0);
  expect(lstatSync(join(dest, "before")).mode & 0o777).not.toBe(0o640);
});

test("no match fails the step with a message", () => {
  const r = copy("nothing-*.txt", join(root, "n1"), { members: ["one.txt"] });
  expect(r.code).toBe(1);
  expect(r.err).toContain("COPY: no files matched nothing-*.txt");
});
