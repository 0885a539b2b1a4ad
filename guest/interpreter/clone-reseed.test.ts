// Kernels restored from a template snapshot must not share random sequences: a context reseeds its
// generators the first time it runs under a sandbox id it has not seen (clone_reseed.py).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { debugSandbox, startInterpreter, type RunningInterpreter } from "./test-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "onebox-reseed-"));
const idFile = join(dir, "sandbox-id");
let server: RunningInterpreter;

beforeAll(async () => {
  writeFileSync(idFile, "clone-a\n");
  server = await startInterpreter({ ONEBOX_SANDBOX_ID_FILE: idFile, ONEBOX_INTERPRETER_USER: "onebox-no-such-user" });
}, 40_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Seeds `random` with a fixed value, optionally switches the sandbox id, and draws one number. */
async function drawAfterSeed(switchTo?: string): Promise<string> {
  const sbx = debugSandbox();
  await sbx.runCode("import random\nrandom.seed(7)");
  if (switchTo) writeFileSync(idFile, `${switchTo}\n`);
  const ex = await sbx.runCode("random.random()");
  expect(ex.error).toBeUndefined();
  return ex.text ?? "";
}

test("same sandbox id: the user's own seed holds; a new id (a clone): the kernel is reseeded first", async () => {
  const seeded = await drawAfterSeed();
  expect(seeded).toMatch(/^0\.\d+$/);
  expect(await drawAfterSeed()).toBe(seeded);
  const afterClone = await drawAfterSeed("clone-b");
  expect(afterClone).toMatch(/^0\.\d+$/);
  expect(afterClone).not.toBe(seeded);
  // Once reseeded under the new id, seeding is the user's again.
  expect(await drawAfterSeed()).toBe(seeded);
}, 60_000);

test("bash contexts get a fresh $RANDOM under a new id", async () => {
  const sbx = debugSandbox();
  const draw = async () => (await sbx.runCode("RANDOM=42; echo $RANDOM", { language: "bash" })).logs.stdout.join("").trim();
  const fixed = await draw();
  expect(fixed).toMatch(/^\d+$/);
  expect(await draw()).toBe(fixed);
  // The reseed runs before the cell, so the cell's own RANDOM=42 still wins.
  writeFileSync(idFile, "clone-c\n");
  expect(await draw()).toBe(fixed);
}, 60_000);
