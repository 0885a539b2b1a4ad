// javascript and typescript contexts (js_kernel.py + js_runtime.mjs on Node) through the real SDK and server.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Context, Sandbox, TimeoutError } from "@e2b/code-interpreter";
import { ensureTestUser } from "../agent/test-harness.ts";
import { startInterpreter, URL, type RunningInterpreter } from "./test-harness.ts";

let server: RunningInterpreter;
let sbx: Sandbox;
let js: Context;
let ts: Context;

/** Fails loudly (never skips) without Node, Debian's acorn and esbuild (scripts/install-deps.sh). */
function requireNodeTools(): void {
  for (const cmd of [["node", "--version"], ["esbuild", "--version"], ["node", "-e", "require('/usr/share/nodejs/acorn')"]]) {
    const r = Bun.spawnSync(cmd, { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: run scripts/install-deps.sh\n${r.stderr}`);
  }
}

beforeAll(async () => {
  requireNodeTools();
  ensureTestUser(); // as in the guest image: kernels run as `user` in /home/user
  server = await startInterpreter();
  sbx = await Sandbox.create({ debug: true });
  [js, ts] = await Promise.all([sbx.createCodeContext({ language: "javascript" }), sbx.createCodeContext({ language: "ts" })]);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const stdout = (ex: { logs: { stdout: string[] } }) => ex.logs.stdout.join("");

test("contexts are listed with their languages; js and ts name them; others are refused", async () => {
  expect(js).toMatchObject({ language: "javascript", cwd: "/home/user" });
  expect(ts).toMatchObject({ language: "typescript", cwd: "/home/user" });
  const listed = (await sbx.listCodeContexts()).map((c) => c.language);
  expect(listed).toEqual(expect.arrayContaining(["python", "javascript", "typescript"]));
  const res = await fetch(`${URL}/contexts`, { method: "POST", body: JSON.stringify({ language: "cobol" }) });
  expect(res.status).toBe(400);
  expect(await res.text()).toBe("Language 'cobol' is not supported by this template (supported: bash, java, javascript, python, r, typescript)");
});

test("state survives between cells; the last expression is the result, shown as Node's REPL shows it (util.inspect)", async () => {
  expect((await sbx.runCode("const a = 40\nlet o = { a, s: 'x', l: [1, 2] }", { context: js })).results).toEqual([]);
  expect((await sbx.runCode("a + 2", { context: js })).text).toBe("42");
  expect((await sbx.runCode("o", { context: js })).text).toBe("{ a: 40, s: 'x', l: [ 1, 2 ] }");
  // as for every language (results.py, §4.2): a string's surrounding quotes are dropped
  expect((await sbx.runCode("'abc'", { context: js })).text).toBe("abc");
  expect((await sbx.runCode("{ k: 1 }", { context: js })).text).toBe("{ k: 1 }"); // an object, not a block
  // declarations may be run again (a cell re-run), functions and classes outlive their cell
  await sbx.runCode("const a = 1\nfunction twice(n) { return 2 * n }\nclass P { constructor(v) { this.v = v } }", { context: js });
  expect((await sbx.runCode("twice(a) + new P(3).v", { context: js })).text).toBe("5");
  expect((await sbx.runCode("undefined", { context: js })).results).toEqual([]);
}, 20_000);

test("ESM imports, dynamic import and require work in a cell, relative ones from the cwd", async () => {
  const dir = mkdtempSync(join(tmpdir(), "onebox-js-"));
  chmodSync(dir, 0o755); // the kernel runs as `user`
  await Bun.write(join(dir, "helper.mjs"), "export const answer = 42;\nexport default 'dflt';\n");
  const ctx = await sbx.createCodeContext({ language: "javascript", cwd: dir });
  try {
    await sbx.runCode('import fs from "node:fs"\nimport { join as j } from "node:path"\nimport * as os from "os"', { context: ctx });
    expect((await sbx.runCode("[typeof fs.readFileSync, j('a', 'b'), typeof os.hostname]", { context: ctx })).text).toBe(
      "[ 'function', 'a/b', 'function' ]",
    );
    const local = await sbx.runCode('import d, { answer } from "./helper.mjs"\n[d, answer, (await import("./helper.mjs")).answer]', {
      context: ctx,
    });
    expect(local.text).toBe("[ 'dflt', 42, 42 ]");
    expect((await sbx.runCode("require('node:path').basename(process.cwd())", { context: ctx })).text).toBe(dir.split("/").pop());
  } finally {
    await sbx.removeCodeContext(ctx);
    rmSync(dir, { recursive: true, force: true });
  }
}, 20_000);

test("top-level await", async () => {
  const ex = await sbx.runCode("const v = await new Promise((r) => setTimeout(() => r(6), 50))\nv * 7", { context: js });
  expect(ex.error).toBeUndefined();
  expect(ex.text).toBe("42");
});

test("console.log goes to stdout and console.error to stderr, with callbacks", async () => {
  const seen: string[] = [];
  const ex = await sbx.runCode("console.log('hello', 1)\nconsole.error('oops')", { context: js, onStdout: (m) => void seen.push(m.line) });
  expect(stdout(ex)).toBe("hello 1\n");
  expect(ex.logs.stderr.join("")).toBe("oops\n");
  expect(seen.join("")).toBe("hello 1\n");
  expect(ex.results).toEqual([]);
});

test("an exception is the execution's error: name, value, a traceback of the cell's frames", async () => {
  const ex = await sbx.runCode("function f() {\n  throw new RangeError('boom')\n}\nf()", { context: js });
  expect(ex.error?.name).toBe("RangeError");
  expect(ex.error?.value).toBe("boom");
  expect(ex.error?.traceback).toMatch(/^RangeError: boom\n {4}at f \(cell\[\d+\]:2:9\)\n {4}at cell\[\d+\]:4:\d+$/);
  const syntax = await sbx.runCode("let = ;", { context: js });
  expect(syntax.error).toMatchObject({ name: "SyntaxError", value: "Unexpected token (1:6)" });
  expect((await sbx.runCode("throw 'plain'", { context: js })).error).toMatchObject({ name: "Error", value: "Uncaught 'plain'" });
  expect((await sbx.runCode("a", { context: js })).text).toBe("1"); // the context carries on
}, 20_000);

test("per-call envs apply to one call; the cwd is /home/user", async () => {
  const read = "[process.env.ONEBOX_JS, process.cwd()]";
  expect((await sbx.runCode(read, { context: js, envs: { ONEBOX_JS: "it's set" } })).text).toBe(`[ "it's set", '/home/user' ]`);
  expect((await sbx.runCode(read, { context: js })).text).toBe("[ undefined, '/home/user' ]");
  expect((await sbx.runCode(read, { language: "typescript", envs: { ONEBOX_JS: "ts" } })).text).toBe("[ 'ts', '/home/user' ]");
}, 20_000);

test("typescript: types are stripped, enums work, an import used by a later cell is kept", async () => {
  const ex = await sbx.runCode(
    [
      "import { join } from 'node:path'",
      "import type { Stats } from 'node:fs'",
      "interface Pt { x: number; y?: number }",
      "enum Color { Red, Green }",
      "function sq(n: number): number { return n * n }",
      "const p: Pt = { x: 3 }",
      "const s: Stats | null = null",
      "sq(p.x) + Color.Green as number",
    ].join("\n"),
    { context: ts },
  );
  expect(ex.error).toBeUndefined();
  expect(ex.text).toBe("10");
  expect((await sbx.runCode("join('x', 'y') as string", { context: ts })).text).toBe("x/y");
  const bad = await sbx.runCode("const x: number = ;", { context: ts });
  expect(bad.error?.name).toBe("SyntaxError");
  expect(bad.error?.value).toContain('Unexpected ";"');
}, 20_000);

test("timeoutMs interrupts an awaiting cell and a busy loop; the context keeps its state", async () => {
  await sbx.runCode("let finished = false", { context: js });
  const started = Date.now();
  await expect(
    sbx.runCode("await new Promise((r) => setTimeout(r, 30_000))\nfinished = true", { context: js, timeoutMs: 1500 }),
  ).rejects.toBeInstanceOf(TimeoutError);
  expect((await sbx.runCode("finished", { context: js })).text).toBe("false");
  await expect(sbx.runCode("finished = 'looping'\nwhile (true) {}", { context: js, timeoutMs: 1500 })).rejects.toBeInstanceOf(TimeoutError);
  expect((await sbx.runCode("finished", { context: js })).text).toBe("looping");
  expect(Date.now() - started).toBeLessThan(10_000);
}, 20_000);

test("a cell that blocks the event loop after an await, or exits Node, gets a fresh runtime", async () => {
  const ctx = await sbx.createCodeContext({ language: "javascript" });
  await sbx.runCode("const kept = 1", { context: ctx });
  await expect(sbx.runCode("await null\nwhile (true) {}", { context: ctx, timeoutMs: 1000 })).rejects.toBeInstanceOf(TimeoutError);
  const after = await sbx.runCode("typeof kept", { context: ctx });
  expect(after.text).toBe("undefined");
  expect(after.logs.stderr.join("")).toContain("did not stop when interrupted; a new Node runtime was started");
  const exited = await sbx.runCode("process.exit(3)", { context: ctx });
  expect(exited.error).toMatchObject({ name: "RuntimeExited" });
  expect((await sbx.runCode("1 + 1", { context: ctx })).text).toBe("2");
  await sbx.removeCodeContext(ctx);
}, 30_000);
