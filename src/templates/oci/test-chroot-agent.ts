// Test support: runs the agent a built rootfs.ext4 carries, from a copy of that image's files (debugfs
// rdump, no loop device) under chroot, with the exec line and env of the image's /etc/onebox/agent.conf,
// as onebox-init starts it in a guest; the e2b SDK drives it like guest/agent/test-harness.ts does.
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "e2b";
import { ENVD_VERSION } from "../../../guest/protocol.ts";

export interface ChrootAgent {
  sandbox(): Sandbox;
  init(body: Record<string, unknown>): Promise<Response>;
  stop(): Promise<void>;
}

function sh(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}`);
}

export async function startChrootAgent(img: string, root: string): Promise<ChrootAgent> {
  mkdirSync(root, { recursive: true });
  sh(["debugfs", "-R", `rdump / ${root}`, img]);
  const conf = readFileSync(join(root, "etc/onebox/agent.conf"), "utf8").split("\n");
  const exec = conf.find((l) => l.startsWith("exec="))!.slice(5).split(" ");
  const env = Object.fromEntries(conf.filter((l) => l.startsWith("env=")).map((l) => l.slice(4).split(/=(.*)/s).slice(0, 2)));
  const mounts: string[] = [];
  const unmount = () => {
    for (const m of mounts.reverse()) Bun.spawnSync(["umount", "-l", m]);
    mounts.length = 0;
  };
  try {
    sh(["mount", "-t", "proc", "proc", join(root, "proc")]);
    mounts.push(join(root, "proc"));
    sh(["mount", "--bind", "/dev", join(root, "dev")]);
    mounts.push(join(root, "dev"));
  } catch (e) {
    unmount();
    throw e;
  }
  const proc = Bun.spawn(["chroot", root, ...exec, "--port", "0"], { env, cwd: "/", stdout: "pipe", stderr: "pipe" });
  const reader = proc.stdout.getReader();
  let out = "";
  let port = 0;
  const deadline = Date.now() + 15_000;
  while (!port) {
    const r = await Promise.race([reader.read(), Bun.sleep(Math.max(1, deadline - Date.now())).then(() => null)]);
    if (r === null || r.done) {
      proc.kill("SIGKILL");
      unmount();
      throw new Error(`the image's agent did not start: ${out} ${await new Response(proc.stderr).text()}`);
    }
    out += new TextDecoder().decode(r.value);
    const m = /listening on [^:]+:(\d+)/.exec(out);
    if (m) port = Number(m[1]);
  }
  reader.releaseLock();
  void proc.stdout.pipeTo(new WritableStream()).catch(() => {});
  const url = `http://127.0.0.1:${port}`;
  return {
    sandbox() {
      const Ctor = Sandbox as unknown as new (o: Record<string, unknown>) => Sandbox;
      return new Ctor({ sandboxId: "ocitest", envdVersion: ENVD_VERSION, debug: true, sandboxUrl: url });
    },
    init(body) {
      return fetch(`${url}/init`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    },
    async stop() {
      proc.kill("SIGKILL");
      await proc.exited;
      unmount();
      // Only once nothing is mounted below it (never rm -rf through a mount).
      const still = readFileSync("/proc/self/mounts", "utf8").includes(` ${root}/`);
      if (!still) rmSync(root, { recursive: true, force: true });
    },
  };
}
