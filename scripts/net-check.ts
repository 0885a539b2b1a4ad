// The manual check of docs/network.md with a real network: in a test host with --net (QEMU user networking), a
// sandbox of the base image reaches a real package mirror by name (DNS through the gateway's forwarder) over HTTPS.
//   bash scripts/mkrootfs.sh --out .cache/api-e2e-base-template --variant base
//   scripts/testhost run --net 'bun scripts/net-check.ts'
import { mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "e2b";
import { startTestDaemon } from "../src/api/test-support.ts";
import { registerTemplate } from "../src/templates/register.ts";

const REPO = join(import.meta.dir, "..");
const root = `/tmp/obx-net-check-${process.pid}`;
mkdirSync(root, { recursive: true });
const initrd = join(root, "initramfs.cpio.gz");
Bun.spawnSync(["bash", "scripts/mkinitramfs.sh", "--modules", join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules"), "--out", initrd], { cwd: REPO });
const d = await startTestDaemon({ network: true, warmPoolSize: 0, bootTimeoutMs: 600_000 }, mkdtempSync(join(root, "data-")));
if (!d.config.network) throw new Error("the daemon has no networking here");
await registerTemplate(d.state, d.dataDir, {
  name: "base",
  from: join(REPO, ".cache", "api-e2e-base-template"),
  kernel: process.env.ONEBOX_TEST_KERNEL ?? "",
  initrd,
  cpuCount: 1,
  memoryMb: 512,
  diskSizeMb: 2048,
});
const s = await Sandbox.create("base", { apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: 600_000 });
for (const cmd of [
  "cat /etc/resolv.conf",
  "getent hosts deb.debian.org",
  "curl -sS -o /dev/null -w 'HTTP %{http_code} from %{remote_ip} in %{time_total} s\\n' https://deb.debian.org/debian/dists/bookworm/Release",
  "sudo -n apt-get update 2>&1 | tail -n 3",
]) {
  const r = await s.commands.run(cmd, { timeoutMs: 300_000 }).catch((e: { stdout?: string; stderr?: string; message: string }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? e.message }));
  console.log(`$ ${cmd}\n${r.stdout}${r.stderr ?? ""}`);
}
await s.kill();
await d.stop();
