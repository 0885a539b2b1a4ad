// Contexts through the real SDK: create/list/restart/remove, isolation, bash, parallel runs, errors (§4.1).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Context, NotFoundError, Sandbox, SandboxError } from "@e2b/code-interpreter";
import { ensureTestUser } from "../agent/test-harness.ts";
import { startInterpreter, URL, type RunningInterpreter } from "./test-harness.ts";

let server: RunningInterpreter;
let sbx: Sandbox;
// As service.conf sets it in the guest: onebox's kernel files live outside the user's /tmp.
const runBase = mkdtempSync(join(tmpdir(), "onebox-test-run-"));
const kernelDirsInTmp = () => readdirSync(tmpdir()).filter((n) => n.startsWith("onebox-kernels-"));
let tmpBefore: string[] = [];
// Kernels are the slow part (1-3 s each on a loaded 2-core host): tests below share three.
let pool: Promise<Context[]> | undefined;
const shared = () => (pool ??= Promise.all([1, 2, 3].map(() => sbx.createCodeContext())));

beforeAll(async () => {
  ensureTestUser(); // as in the guest image: user `user` exists (the agent's tests make it too)
  tmpBefore = kernelDirsInTmp();
  server = await startInterpreter({ ONEBOX_INTERPRETER_RUN_DIR: runBase });
  sbx = await Sandbox.create({ debug: true });
}, 40_000);

afterAll(async () => {
  await server?.stop();
  rmSync(runBase, { recursive: true, force: true });
});

test("the interpreter's runtime dir is under ONEBOX_INTERPRETER_RUN_DIR, not in the user's /tmp", async () => {
  const f = await sbx.runCode("from ipykernel import get_connection_file\nget_connection_file()");
  expect(f.text?.replace(/^'|'$/g, "").startsWith(runBase + "/")).toBe(true);
  expect(kernelDirsInTmp().filter((n) => !tmpBefore.includes(n))).toEqual([]);
}, 20_000);

test("a default python context exists at startup", async () => {
  const list = await sbx.listCodeContexts();
  expect(list).toHaveLength(1);
  expect(list[0]!.language).toBe("python");
});


test("kernels run as user `user` in /home/user, the server as root (§4.4)", async () => {
  const py = await sbx.runCode('import os, pwd\n(pwd.getpwuid(os.getuid()).pw_name, os.getcwd(), os.environ["HOME"])');
  expect(py.text).toBe("('user', '/home/user', '/home/user')");
  const sh = await sbx.runCode('echo "$(id -un) $PWD"', { language: "bash" });
  expect(sh.logs.stdout.join("")).toBe("user /home/user\n");
  expect((await sbx.listCodeContexts()).every((c) => c.cwd === "/home/user")).toBe(true);
}, 20_000);

test("contexts are isolated, restart clears state, remove deletes", async () => {
  const cwd = (await sbx.listCodeContexts())[0]!.cwd;
  const ctx = await sbx.createCodeContext({ language: "python", cwd });
  expect(ctx).toMatchObject({ language: "python", cwd });
  expect(ctx.id).toMatch(/^[0-9a-f]{32}$/);
  await sbx.runCode("secret = 7", { context: ctx });
  expect((await sbx.runCode("secret * 6", { context: ctx })).text).toBe("42");
  expect((await sbx.runCode("secret")).error?.name).toBe("NameError"); // the default context
  expect((await sbx.listCodeContexts()).map((c) => c.id)).toContain(ctx.id);

  await sbx.restartCodeContext(ctx);
  expect((await sbx.runCode("secret", { context: ctx })).error?.name).toBe("NameError");
  const where = await sbx.runCode("import os; os.getcwd()", { context: ctx });
  expect(JSON.stringify(where.toJSON())).toBe(JSON.stringify({ results: [{ text: cwd }], logs: { stdout: [], stderr: [] } }));

  await sbx.removeCodeContext(ctx);
  expect((await sbx.listCodeContexts()).map((c) => c.id)).not.toContain(ctx.id);
  await expect(sbx.runCode("1", { context: ctx })).rejects.toBeInstanceOf(NotFoundError);
}, 30_000);

test("a context gets the cwd it asks for", async () => {
  const dir = `/tmp/onebox-interp-cwd-${process.pid}`;
  const ctx = await sbx.createCodeContext({ cwd: dir });
  expect(ctx.language).toBe("python");
  expect((await sbx.runCode("import os; os.getcwd()", { context: ctx })).text).toBe(dir);
  await sbx.removeCodeContext(ctx.id);
  rmSync(dir, { recursive: true, force: true });
}, 20_000);

test("unknown contexts are 404 with the spec's text; restart and remove too", async () => {
  const res = await fetch(`${URL}/execute`, { method: "POST", body: JSON.stringify({ code: "1", context_id: "nope" }) });
  expect(res.status).toBe(404);
  expect(await res.text()).toBe("Context nope not found");
  await expect(sbx.restartCodeContext("nope")).rejects.toBeInstanceOf(NotFoundError);
  await expect(sbx.removeCodeContext("nope")).rejects.toBeInstanceOf(NotFoundError);
});

test("context_id together with language is 400", async () => {
  const id = (await sbx.listCodeContexts())[0]!.id;
  const res = await fetch(`${URL}/execute`, {
    method: "POST",
    body: JSON.stringify({ code: "1", context_id: id, language: "python" }),
  });
  expect(res.status).toBe(400);
});

test("a language this template does not install is refused with 400", async () => {
  await expect(sbx.runCode("1", { language: "cobol" })).rejects.toThrow(/400/);
  await expect(sbx.createCodeContext({ language: "go" })).rejects.toBeInstanceOf(SandboxError);
});

test("bash contexts keep shell state, honour envs and report exit codes", async () => {
  const ctx = await sbx.createCodeContext({ language: "bash" });
  expect(ctx.language).toBe("bash");
  const a = await sbx.runCode('N=5; cd /tmp; echo "n=$N"', { context: ctx });
  expect(a.logs.stdout.join("")).toBe("n=5\n");
  const b = await sbx.runCode('echo "$N $PWD"; echo warn >&2', { context: ctx });
  expect(b.logs.stdout.join("")).toBe("5 /tmp\n");
  expect(b.logs.stderr.join("")).toBe("warn\n");
  const env = await sbx.runCode('echo "[$ONEBOX_B]"', { context: ctx, envs: { ONEBOX_B: "it's set" } });
  expect(env.logs.stdout.join("")).toBe("[it's set]\n");
  expect((await sbx.runCode('echo "[$ONEBOX_B]"', { context: ctx })).logs.stdout.join("")).toBe("[]\n");
  const fail = await sbx.runCode("ls /nonexistent-onebox", { context: ctx });
  expect(fail.error?.value).toBe("2");
  // `language: "bash"` reaches the default bash context (another one)
  expect((await sbx.runCode("echo ${N:-none}", { language: "bash" })).logs.stdout.join("")).toBe("none\n");
}, 30_000);

test("a bash cell is interrupted by timeoutMs and the shell survives", async () => {
  const ctx = await sbx.createCodeContext({ language: "bash" });
  await sbx.runCode("KEEP=yes", { context: ctx });
  await expect(sbx.runCode("sleep 30; KEEP=no", { context: ctx, timeoutMs: 1000 })).rejects.toThrow(/timed out/i);
  const after = await sbx.runCode("echo $KEEP", { context: ctx });
  expect(after.logs.stdout.join("")).toBe("yes\n");
  await sbx.removeCodeContext(ctx);
}, 20_000);

test("runCode on different contexts runs in parallel", async () => {
  const ctxs = await shared();
  const started = Date.now();
  const runs = await Promise.all(
    ctxs.map((ctx, i) => sbx.runCode(`import time\ntime.sleep(1.5)\n${i} * 10`, { context: ctx })),
  );
  const took = Date.now() - started;
  expect(runs.map((r) => r.text)).toEqual(["0", "10", "20"]);
  expect(took).toBeLessThan(4000); // three 1.5 s cells serialised would take 4.5 s
}, 30_000);

test("several runCode calls on one context all run, one after another", async () => {
  const ctx = (await shared())[0]!;
  await sbx.runCode("seen = []", { context: ctx });
  await Promise.all([1, 2, 3].map((i) => sbx.runCode(`import time; time.sleep(0.2); seen.append(${i})`, { context: ctx })));
  const seen = (await sbx.runCode("sorted(seen)", { context: ctx })).text;
  expect(seen).toBe("[1, 2, 3]");
}, 20_000);

test("restarting a context stops its running cell at once", async () => {
  const ctx = (await shared())[1]!;
  const running = sbx.runCode("import time\ntime.sleep(30)", { context: ctx });
  await Bun.sleep(500);
  const started = Date.now();
  await sbx.restartCodeContext(ctx);
  const ex = await running;
  expect(ex.error?.name).toBe("ContextRestarted");
  expect(Date.now() - started).toBeLessThan(10_000);
  expect((await sbx.runCode("6 * 7", { context: ctx })).text).toBe("42");
}, 30_000);

test("a kernel that dies is reported and replaced", async () => {
  const ctx = (await shared())[2]!;
  await sbx.runCode("kept = 1", { context: ctx });
  const ex = await sbx.runCode("import os\nos._exit(3)", { context: ctx });
  expect(ex.error?.name).toBe("KernelDied");
  const after = await sbx.runCode("'kept' in globals()", { context: ctx });
  expect(after.text).toBe("False"); // a new kernel: state is gone, the context works
  await Promise.all((await shared()).map((c) => sbx.removeCodeContext(c)));
}, 30_000);
