// Test support: Debian's docker-registry (the reference distribution server) on 127.0.0.1, a free
// port, its own temporary storage; and skopeo pushes of OCI layouts the tests made to it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

export interface TestRegistry {
  /** host:port, e.g. 127.0.0.1:40123 */
  host: string;
  /** Copies an OCI layout's image (dir:tag) to host/repo:tag. */
  push(layout: string, tag: string, repoTag: string): void;
  stop(): Promise<void>;
}

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** With `auth`, the registry wants that user (htpasswd, bcrypt) for every request, pushes included. */
export async function startTestRegistry(auth?: { username: string; password: string }): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "onebox-registry-"));
  const port = freePort();
  const config = join(dir, "config.yml");
  let authConf = "";
  if (auth) {
    writeFileSync(join(dir, "htpasswd"), `${auth.username}:${await Bun.password.hash(auth.password, { algorithm: "bcrypt", cost: 4 })}\n`);
    authConf = `auth:\n  htpasswd:\n    realm: onebox-test\n    path: ${join(dir, "htpasswd")}\n`;
  }
  writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "store")}\n  delete:\n    enabled: true\n${authConf}http:\n  addr: 127.0.0.1:${port}\n`);
  const proc: Subprocess = Bun.spawn(["docker-registry", "serve", config], { stdout: "ignore", stderr: "pipe" });
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.ok || r.status === 401, () => false);
    if (ok) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start on ${host} (scripts/install-deps.sh installs it)`);
    }
    await Bun.sleep(50);
  }
  return {
    host,
    push(layout, tag, repoTag) {
      const creds = auth ? ["--dest-creds", `${auth.username}:${auth.password}`] : [];
      const r = Bun.spawnSync(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", ...creds, `oci:${layout}:${tag}`, `docker://${host}/${repoTag}`], { stderr: "pipe", stdout: "ignore" });
      if (r.exitCode !== 0) throw new Error(`skopeo push to ${host}/${repoTag} failed: ${r.stderr.toString()}`);
    },
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
