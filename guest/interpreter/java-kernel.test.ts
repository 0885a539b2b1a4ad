// java contexts (java_kernel.py + java_runtime.java on Debian's JDK) through the real SDK and server.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Context, Sandbox, TimeoutError } from "@e2b/code-interpreter";
import { ensureTestUser } from "../agent/test-harness.ts";
import { startInterpreter, type RunningInterpreter } from "./test-harness.ts";

let server: RunningInterpreter;
let sbx: Sandbox;
let java: Context;

beforeAll(async () => {
  const probe = Bun.spawnSync(["jshell", "--version"], { stderr: "pipe" });
  if (probe.exitCode !== 0) throw new Error(`a JDK with jshell is missing: run scripts/install-deps.sh\n${probe.stderr}`);
  ensureTestUser(); // as in the guest image: kernels run as `user` in /home/user
  server = await startInterpreter();
  sbx = await Sandbox.create({ debug: true });
  java = await sbx.createCodeContext({ language: "java" });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const stdout = (ex: { logs: { stdout: string[] } }) => ex.logs.stdout.join("");

test("a java context is listed; state survives between cells; the last expression is the result", async () => {
  expect(java).toMatchObject({ language: "java", cwd: "/home/user" });
  expect((await sbx.listCodeContexts()).map((c) => c.language)).toContain("java");
  const first = await sbx.runCode("int x = 40;\nString greet(String n) { return \"hi \" + n; }", { context: java });
  expect(first.error).toBeUndefined();
  expect(first.results).toEqual([]); // declarations show nothing
  expect(stdout(first) + first.logs.stderr.join("")).toBe(""); // no JDK notes leak into a cell
  expect((await sbx.runCode("x + 2", { context: java })).text).toBe("42");
  expect((await sbx.runCode('greet("you")', { context: java })).text).toBe("hi you"); // a String, unquoted
  expect((await sbx.runCode("new int[] {1, 2}", { context: java })).text).toBe("int[2] { 1, 2 }"); // as jshell shows it
  // jshell's default imports (java.util.*, java.util.stream.*, …); a class outlives its cell
  const ex = await sbx.runCode(
    "record P(int a) {}\nList<P> ps = Stream.of(1, 2).map(P::new).collect(Collectors.toList());\nps",
    { context: java },
  );
  expect(ex.text).toBe("[P[a=1], P[a=2]]");
}, 30_000);

test("System.out is stdout and System.err is stderr, streamed to the callbacks", async () => {
  const seen: string[] = [];
  const ex = await sbx.runCode('System.out.println("hello");\nSystem.out.print("no newline");\nSystem.err.println("oops");', {
    context: java,
    onStdout: (m) => void seen.push(m.line),
  });
  expect(stdout(ex)).toBe("hello\nno newline");
  expect(ex.logs.stderr.join("")).toBe("oops\n");
  expect(seen.join("")).toBe("hello\nno newline");
  expect(ex.results).toEqual([]); // println is a void call: no result
}, 20_000);

test("an exception and a compile error are the execution's error (name, value, traceback)", async () => {
  const thrown = await sbx.runCode('int div(int a) { return 10 / a; }\nSystem.out.println("before");\ndiv(0)', { context: java });
  expect(stdout(thrown)).toBe("before\n");
  expect(thrown.error).toMatchObject({ name: "java.lang.ArithmeticException", value: "/ by zero" });
  expect(thrown.error?.traceback).toMatch(/^java\.lang\.ArithmeticException: \/ by zero\n\tat div\(#\d+:1\)/);
  const bad = await sbx.runCode('int y = "a";', { context: java });
  expect(bad.error).toMatchObject({ name: "CompilationException", value: "incompatible types: java.lang.String cannot be converted to int" });
  expect(bad.error?.traceback).toBe('incompatible types: java.lang.String cannot be converted to int\nint y = "a";\n        ^^^');
  const open = await sbx.runCode("for (int i = 0; i < 2; i++) {", { context: java });
  expect(open.error?.name).toBe("CompilationException");
  expect((await sbx.runCode("x", { context: java })).text).toBe("40"); // the context carries on
}, 20_000);

test("per-call envs apply to one call (System.getenv); the cwd is /home/user", async () => {
  const read = 'System.getenv("ONEBOX_JAVA") + " " + new java.io.File("").getAbsolutePath()';
  expect((await sbx.runCode(read, { context: java, envs: { ONEBOX_JAVA: 'b\u00e4r "q" \\u0041 \u{1F600}' } })).text).toBe(
    'b\u00e4r "q" \\u0041 \u{1F600} /home/user',
  );
  expect((await sbx.runCode(read, { context: java })).text).toBe("null /home/user");
  // the JVM leaves nothing of its own in the user's /tmp (no hsperfdata_<user>/<pid>). Only a file made since this JVM
  // started counts: on a shared host a JVM killed long ago left /tmp/hsperfdata_user/8746, and a unit run whose JVM
  // got pid 8746 again failed on that file.
  const perfFile = 'new File("/tmp/hsperfdata_" + System.getProperty("user.name"), "" + ProcessHandle.current().pid())';
  const started = "ProcessHandle.current().info().startInstant().orElseThrow().toEpochMilli()";
  const perf = `${perfFile}.exists() && ${perfFile}.lastModified() >= ${started} - 1000`;
  expect((await sbx.runCode(perf, { context: java })).text).toBe("false");
}, 20_000);

test("timeoutMs interrupts a sleeping cell and a busy loop; the context keeps its state; System.exit gets a fresh JVM", async () => {
  await sbx.runCode("int state = 1;", { context: java });
  const started = Date.now();
  await expect(sbx.runCode("Thread.sleep(30_000);\nstate = 2;", { context: java, timeoutMs: 1500 })).rejects.toBeInstanceOf(TimeoutError);
  expect((await sbx.runCode("state", { context: java })).text).toBe("1");
  // The loop is compiled in an untimed cell of its own, so the timeout can only land in the loop, not in JShell's
  // compile of it. Its counter is atomic: with a plain `state++` the JIT may keep the field of a loop that never
  // ends in a register and never store it, and `state > 3` read false now and then on a loaded machine although
  // the loop had run (seen in CI, and here with the loop already compiled).
  await sbx.runCode("var spins = new java.util.concurrent.atomic.AtomicLong();\nvoid spin() { while (true) { spins.incrementAndGet(); } }", { context: java });
  await expect(sbx.runCode("spin();", { context: java, timeoutMs: 3000 })).rejects.toBeInstanceOf(TimeoutError);
  expect((await sbx.runCode("spins.get() > 0", { context: java })).text).toBe("true");
  expect(Date.now() - started).toBeLessThan(25_000);
  const exited = await sbx.runCode("System.exit(3);", { context: java });
  expect(exited.error).toMatchObject({ name: "RuntimeExited", value: expect.stringContaining("java exited with status 3") });
  expect((await sbx.runCode("1 + 1", { context: java })).text).toBe("2");
}, 40_000);
