// r contexts (Debian's IRkernel) through the real SDK and server: state, output, errors, envs, interrupt.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Context, Sandbox, TimeoutError } from "@e2b/code-interpreter";
import { ensureTestUser } from "../agent/test-harness.ts";
import { startInterpreter, type RunningInterpreter } from "./test-harness.ts";

let server: RunningInterpreter;
let sbx: Sandbox;
let r: Context;

beforeAll(async () => {
  const probe = Bun.spawnSync(["R", "--slave", "-e", "library(IRkernel)"], { stderr: "pipe" });
  if (probe.exitCode !== 0) throw new Error(`R with IRkernel is missing: run scripts/install-deps.sh\n${probe.stderr}`);
  ensureTestUser();
  server = await startInterpreter();
  sbx = await Sandbox.create({ debug: true });
  r = await sbx.createCodeContext({ language: "R" });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

// IRkernel shows a value as display_data (text, html, markdown, latex), not as an execute_result.
const shown = (ex: { results: { text?: string }[] }) => ex.results.map((x) => x.text).join("\n");

test("an r context keeps state; cat and message go to stdout and stderr", async () => {
  expect(r).toMatchObject({ language: "r", cwd: "/home/user" });
  await sbx.runCode("x <- 40", { context: r });
  const ex = await sbx.runCode('cat("hi\\n")\nmessage("warn")\nx + 2', { context: r });
  expect(ex.logs.stdout.join("")).toBe("hi\n");
  expect(ex.logs.stderr.join("")).toContain("warn\n");
  expect(shown(ex)).toBe("[1] 42");
}, 20_000);

test("an error is the execution's error; per-call envs apply to one call; the cwd is /home/user", async () => {
  const bad = await sbx.runCode('stop("boom")', { context: r });
  expect(bad.error?.value).toContain("boom");
  const read = 'c(Sys.getenv("ONEBOX_R", unset = "unset"), getwd())';
  expect(shown(await sbx.runCode(read, { context: r, envs: { ONEBOX_R: 'b\u00e4r "q"' } }))).toBe('[1] "b\u00e4r \\"q\\""  "/home/user"');
  expect(shown(await sbx.runCode(read, { context: r }))).toBe('[1] "unset"      "/home/user"');
}, 20_000);

test("timeoutMs interrupts an r cell and the context keeps its state", async () => {
  await sbx.runCode("done <- FALSE", { context: r });
  await expect(sbx.runCode("Sys.sleep(30)\ndone <- TRUE", { context: r, timeoutMs: 1500 })).rejects.toBeInstanceOf(TimeoutError);
  expect(shown(await sbx.runCode("done", { context: r }))).toBe("[1] FALSE");
}, 20_000);
