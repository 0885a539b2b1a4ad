// Tests the host's command runner against the real guest agent (run here as a process, guest/agent/test-harness.ts):
// user, cwd and env, exit codes, output lines split across chunks, the agent's errors, and a detached process.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { ensureTestUser, startTestAgent, type RunningAgent } from "../../guest/agent/test-harness.ts";
import { guestExec } from "./guest-exec.ts";

let agent: RunningAgent;
beforeAll(async () => {
  ensureTestUser();
  agent = await startTestAgent();
});
afterAll(() => agent?.stop());

test("runs as the user, in the cwd, with the env; the exit code and every line come back", async () => {
  const lines: string[] = [];
  const r = await guestExec(agent.url, 'id -un; pwd; echo "$A"; printf "no newline at the end"; echo err >&2; exit 3', { user: "user", cwd: "/tmp", envs: { A: "from env" }, onLine: (l, s) => lines.push(`${s}:${l}`) });
  expect(r.exitCode).toBe(3);
  expect(r.pid).toBeGreaterThan(0);
  expect(lines).toContain("stdout:user");
  expect(lines).toContain("stdout:/tmp");
  expect(lines).toContain("stdout:from env");
  expect(lines).toContain("stdout:no newline at the end");
  expect(lines).toContain("stderr:err");
  expect(r.tail.length).toBe(5);
});

test("many lines: all delivered in order, the tail keeps the last 20", async () => {
  const lines: string[] = [];
  const r = await guestExec(agent.url, "seq 1 3000", { user: "root", onLine: (l) => lines.push(l) });
  expect(r.exitCode).toBe(0);
  expect(lines).toEqual(Array.from({ length: 3000 }, (_, i) => String(i + 1)));
  expect(r.tail.at(-1)).toBe("3000");
  expect(r.tail.length).toBe(20);
});

test("an unknown user is the agent's error, not a hang", async () => {
  const r = await guestExec(agent.url, "true", { user: "no-such-user-here" });
  expect(r).toMatchObject({ pid: 0, exitCode: -1, error: "unauthenticated: invalid username: 'no-such-user-here'" });
});

test("detach: returns once started, and the process runs on", async () => {
  const f = `/tmp/obx-detach-${process.pid}`;
  rmSync(f, { force: true });
  const t0 = performance.now();
  const r = await guestExec(agent.url, `sleep 0.5; echo later > ${f}`, { user: "root", detach: true });
  expect(performance.now() - t0).toBeLessThan(450);
  expect(r.pid).toBeGreaterThan(0);
  for (let i = 0; i < 50 && !existsSync(f); i++) await Bun.sleep(50);
  expect(readFileSync(f, "utf8")).toBe("later\n");
  rmSync(f, { force: true });
});
