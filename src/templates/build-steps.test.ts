// Tests the template build step runner with real processes: steps from output markers, a failing
// step named with the log's last lines, and an interrupt that leaves nothing half-made.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuildError, BuildInterrupted, StepRun } from "./build-steps.ts";
import { LineProgress, type ProgressReporter, type StepOutcome } from "./progress.ts";

const root = join(tmpdir(), `onebox-steps-${process.pid}`);
mkdirSync(root, { recursive: true });
afterAll(() => rmSync(root, { recursive: true, force: true }));

class Recorder implements ProgressReporter {
  events: string[] = [];
  begin(step: string, i: number, n: number) {
    this.events.push(`begin ${step} ${i}/${n}`);
  }
  detail() {}
  end(step: string, outcome: StepOutcome) {
    this.events.push(`end ${step} ${outcome}`);
  }
  finish(ok: boolean) {
    this.events.push(ok ? "ok" : "failed");
  }
}

const marker = (line: string) => {
  const m = /^phase (\w+)( cached)?$/.exec(line);
  return m ? { step: m[1]!, cached: !!m[2] } : null;
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("steps start from output markers; cached steps are reported; success keeps the output", async () => {
  const rec = new Recorder();
  const logFile = join(root, "ok.log");
  const out = join(root, "ok-out");
  const run = new StepRun({ template: "t", steps: ["a", "b", "c", "d"], logFile, reporter: rec });
  const value = await run.run(async () => {
    await run.step("a", () => undefined);
    run.onFailure("out", () => rmSync(out, { recursive: true, force: true }));
    run.begin("b"); // started here, then announced by the script as cached: one entry
    await run.spawn(["bash", "-c", `echo 'phase b cached'; echo 'phase c'; mkdir -p ${out}; echo made >&2`], { marker });
    return run.step("d", () => 42);
  });
  expect(value).toBe(42);
  expect(rec.events).toEqual(["begin a 1/4", "end a done", "begin b 2/4", "end b cached", "begin c 3/4", "end c done", "begin d 4/4", "end d done", "ok"]);
  expect(existsSync(out)).toBe(true);
  const log = readFileSync(logFile, "utf8");
  expect(log).toContain("step c");
  expect(log).toContain("made");
});

test("a failing step: the error names it, says why, carries the log's last lines, and the undo runs", async () => {
  const rec = new Recorder();
  const logFile = join(root, "fail.log");
  const out = join(root, "fail-out");
  const run = new StepRun({ template: "t", steps: ["a", "b", "c"], logFile, reporter: rec });
  const err = await run
    .run(async () => {
      await run.step("a", () => undefined);
      mkdirSync(out);
      run.onFailure("out", () => rmSync(out, { recursive: true, force: true }));
      run.begin("a");
      await run.spawn(["bash", "-c", "echo 'phase b'; for i in $(seq 1 30); do echo noise $i; done; echo 'E: Unable to locate package nosuch' >&2; exit 100"], { marker });
      run.begin("c");
    })
    .catch((e) => e);
  expect(err).toBeInstanceOf(BuildError);
  const b = err as BuildError;
  expect(b.step).toBe("b");
  expect(b.reason).toContain("exited with status 100");
  expect(b.message).toContain("failed at step 'b'");
  expect(b.message).toContain(logFile);
  expect(b.logTail.length).toBeLessThanOrEqual(15);
  expect(b.logTail.join("\n")).toContain("E: Unable to locate package nosuch");
  expect(rec.events.slice(-2)).toEqual(["end b failed", "failed"]);
  expect(existsSync(out)).toBe(false);
});

test("an error thrown by a TS step is attributed to that step", async () => {
  const run = new StepRun({ template: "t", steps: ["kernel", "image"], logFile: join(root, "ts.log"), reporter: new LineProgress("t", () => undefined) });
  const err = (await run.run(() => run.step("kernel", () => Promise.reject(new Error("no guest kernel at /x")))).catch((e) => e)) as BuildError;
  expect(err).toBeInstanceOf(BuildError);
  expect(err.step).toBe("kernel");
  expect(err.reason).toBe("no guest kernel at /x");
});

test("an interrupted run stops the process group, lets the script clean up, runs the undos, and leaves nothing half-made", async () => {
  const rec = new Recorder();
  const logFile = join(root, "int.log");
  const partial = join(root, "int-partial"); // made by the script, removed by its own trap
  const out = join(root, "int-out"); // made by the runner's caller, removed by its undo
  const pidFile = join(root, "int.pids");
  const abort = new AbortController();
  const run = new StepRun({ template: "t", steps: ["a", "b", "c"], logFile, reporter: rec, signal: abort.signal });
  const script = `trap 'rm -rf ${partial}; exit 130' TERM
mkdir -p ${partial}; echo 'phase b'
sleep 60 & echo "$$ $!" > ${pidFile}; wait`;
  const t0 = performance.now();
  const done = run
    .run(async () => {
      mkdirSync(out);
      run.onFailure("out", () => rmSync(out, { recursive: true, force: true }));
      run.begin("a");
      await run.spawn(["bash", "-c", script], { marker });
      run.begin("c");
    })
    .catch((e) => e);
  // Wait until the script is in its sleep and its marker line has reached the runner (a pipe).
  const ready = () => run.currentStep === "b" && existsSync(pidFile) && readFileSync(pidFile, "utf8").trim().split(" ").length === 2;
  for (let i = 0; i < 500 && !ready(); i++) await Bun.sleep(20);
  const [shell, sleeper] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
  abort.abort();
  const err = await done;
  expect(err).toBeInstanceOf(BuildInterrupted);
  expect((err as BuildInterrupted).step).toBe("b");
  expect(performance.now() - t0).toBeLessThan(9_000); // SIGTERM did it, not the SIGKILL fallback
  expect(existsSync(partial)).toBe(false);
  expect(existsSync(out)).toBe(false);
  expect(alive(shell!)).toBe(false);
  expect(alive(sleeper!)).toBe(false); // the whole group, not only the direct child
  expect(rec.events.slice(-2)).toEqual(["end b interrupted", "failed"]);
  // A rerun after the interrupt starts clean and completes.
  const rerun = new StepRun({ template: "t", steps: ["a"], logFile, reporter: rec });
  expect(await rerun.run(() => rerun.step("a", () => "again"))).toBe("again");
});
