// `onebox template build --dockerfile` against a real daemon: the SDK's parser turns the file into the build API's
// steps, COPY sources are uploaded, and a build that fails exits 1 saying why; a multi-stage file is refused before
// the daemon is asked. (A build that succeeds needs a guest kernel and microVMs: tests/e2e/template-build.test.ts.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestDaemon, type TestDaemon } from "../api/test-support.ts";
import { templateCommand } from "./template.ts";

let d: TestDaemon;
let dir = "";
beforeAll(async () => {
  d = await startTestDaemon();
  dir = mkdtempSync(join(tmpdir(), "onebox-dockerfile-"));
  writeFileSync(join(dir, "app.txt"), "hello\n");
});
afterAll(async () => {
  await d.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI, returning its exit code and what it printed. */
async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const [log, err] = [console.log, console.error];
  console.log = console.error = (...m: unknown[]) => void lines.push(m.join(" "));
  try {
    const code = await templateCommand(["build", ...argv, "--url", d.url, "--api-key", d.key, "--data-dir", d.dataDir]);
    return { code, out: lines.join("\n") };
  } finally {
    [console.log, console.error] = [log, err];
  }
}

test("a Dockerfile's build reaches the daemon: COPY's files uploaded, the build run and its failure printed (exit 1)", async () => {
  const file = join(dir, "Dockerfile");
  writeFileSync(file, "FROM 127.0.0.1:9/nothing-here:1\nENV GREETING=hi\nWORKDIR /app\nCOPY app.txt /app/app.txt\nRUN cat /app/app.txt\n");
  const r = await cli("--dockerfile", file, "--name", "from-dockerfile");
  // This daemon has no template to take a guest kernel from, so the build fails at its first step, as it says.
  expect(r.code).toBe(1);
  expect(r.out).toContain("build failed: no registered template names a guest kernel");
  // Before that, the SDK hashed app.txt and uploaded it to the daemon's signed upload route (one tar, by hash).
  const tars = readdirSync(join(d.dataDir, "builds", "files")).filter((f) => f.endsWith(".tar"));
  expect(tars.length).toBe(1);
});

test("a multi-stage Dockerfile, a missing file and a missing --name are refused before the daemon is asked (exit 2)", async () => {
  const file = join(dir, "Multi");
  writeFileSync(file, "FROM a AS one\nFROM b\n");
  const multi = await cli("--dockerfile", file, "--name", "x");
  expect(multi.code).toBe(2);
  expect(multi.out).toContain("Multi-stage Dockerfiles are not supported");
  expect((await cli("--dockerfile", join(dir, "nope"), "--name", "x")).code).toBe(2);
  expect((await cli("--dockerfile", file)).code).toBe(2);
});

test("dist/onebox alone uploads COPY's files too (the SDK's glob and tar, which it imports opaquely, are in the binary)", async () => {
  const bin = join(import.meta.dir, "..", "..", "dist", "onebox");
  expect(existsSync(bin)).toBe(true); // `bun run build` makes it (the CI builds before testing)
  const file = join(dir, "Dockerfile.bin");
  writeFileSync(join(dir, "bin.txt"), "uploaded by the binary\n"); // a file of its own: not already uploaded
  writeFileSync(file, "FROM 127.0.0.1:9/nothing-here:1\nCOPY bin.txt /app/bin.txt\n");
  // Run from a dir with no node_modules above it, as an installed binary is.
  const p = Bun.spawn([bin, "template", "build", "--dockerfile", file, "--name", "from-binary", "--url", d.url, "--api-key", d.key], { cwd: tmpdir(), stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  expect(err).not.toContain("Cannot find package");
  expect(out).toContain("Uploaded 'bin.txt'");
  expect(code).toBe(1); // then the build fails for want of a guest kernel, as above
  expect(err).toContain("build failed: no registered template names a guest kernel");
}, 30_000);
