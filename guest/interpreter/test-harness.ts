// Test helper: runs the real interpreter server (server.py) on port 49999 and builds SDK sandboxes for it.
import { Sandbox } from "@e2b/code-interpreter";
import type { Subprocess } from "bun";
import { join } from "node:path";

/** The guest's python: Debian's (spec §4.4 runs the template's Python; ours is Debian's 3.11). */
export const PYTHON = "/usr/bin/python3";
/** Fixed: in debug mode the SDK's direct URL is always http://localhost:49999 (spec §2.1, §2.6). */
export const PORT = 49999;
export const URL = `http://127.0.0.1:${PORT}`;

const MODULES = ["jupyter_client", "ipykernel", "tornado", "matplotlib", "matplotlib_inline", "pandas", "ptyprocess"];

/** Fails loudly (never skips) when the Debian Python packages are missing. */
export function requirePythonPackages(): void {
  const r = Bun.spawnSync([PYTHON, "-c", `import ${MODULES.join(", ")}`], { stderr: "pipe" });
  if (r.exitCode !== 0) {
    throw new Error(
      `the interpreter needs Debian's Python packages (${MODULES.join(", ")}): run scripts/install-deps.sh\n` +
        r.stderr.toString(),
    );
  }
}

export interface RunningInterpreter {
  proc: Subprocess;
  log: () => string;
  stop(): Promise<void>;
}

export async function startInterpreter(env: Record<string, string> = {}): Promise<RunningInterpreter> {
  requirePythonPackages();
  const busy = await fetch(`${URL}/health`).then(() => true, () => false);
  if (busy) throw new Error(`port ${PORT} is already in use: stop the other code-interpreter server first`);
  const proc = Bun.spawn([PYTHON, join(import.meta.dir, "server.py")], {
    env: {
      ...process.env,
      // An envd that is certainly absent unless a test passes a real one (tolerated, §3.4).
      ONEBOX_ENVD_URL: "http://127.0.0.1:9",
      ONEBOX_INTERPRETER_LOG: process.env.ONEBOX_TEST_SERVER_LOG ?? "WARNING",
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) output += new TextDecoder().decode(chunk);
  };
  void collect(proc.stdout as ReadableStream<Uint8Array>);
  void collect(proc.stderr as ReadableStream<Uint8Array>);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`interpreter exited (${proc.exitCode}):\n${output}`);
    const ok = await fetch(`${URL}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`interpreter did not answer /health within 30 s:\n${output}`);
    }
    await Bun.sleep(100);
  }
  return {
    proc,
    log: () => output,
    async stop() {
      if (process.env.ONEBOX_TEST_SERVER_LOG) console.log(output);
      proc.kill("SIGTERM"); // the server shuts its kernels down on SIGTERM
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
}

/** An SDK sandbox in debug mode: no API call, code interpreter at http://localhost:49999 (§2.6). */
export function debugSandbox(token?: string): Sandbox {
  if (process.env.E2B_SANDBOX_URL) throw new Error("unset E2B_SANDBOX_URL: it would redirect the SDK away from :49999");
  const Ctor = Sandbox as unknown as new (o: Record<string, unknown>) => Sandbox;
  return new Ctor({ sandboxId: "debug_sandbox_id", envdVersion: "99.99.99", envdAccessToken: token, debug: true });
}
