// Test support: runs a scenario script in a fresh network + mount namespace (unshare), so its TAPs, routes, nft
// tables, forwarding and bpffs mounts never touch the host, and returns the JSON it prints last.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Root, and unshare(1) present: the network tests need both. */
export const canRunNetns = process.getuid?.() === 0 && Bun.which("unshare") !== null && Bun.which("ip") !== null;

export interface ScenarioResult<T> {
  result: T;
  stderr: string;
}

/** Runs `bun <script> <args>` in new namespaces; the script prints one JSON line last. */
export async function runInNetns<T>(script: string, args: string[] = [], timeoutMs = 60_000): Promise<ScenarioResult<T>> {
  const work = mkdtempSync(join(tmpdir(), "onebox-netns-"));
  try {
    const proc = Bun.spawn(["unshare", "--net", "--mount", "--propagation", "private", "--", process.execPath, script, work, ...args], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ONEBOX_LOG: "warn" },
    });
    const timer = setTimeout(() => proc.kill(9), timeoutMs);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    const last = out.trim().split("\n").pop() ?? "";
    if (code !== 0) throw new Error(`${script} exited ${code}\nstdout: ${out}\nstderr: ${err}`);
    return { result: JSON.parse(last) as T, stderr: err };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Inside a scenario: a shell command in the current namespaces; returns stdout, throws on failure. */
export function sh(cmd: string): string {
  const r = Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd}: exit ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** Inside a scenario: what onebox may have left in this namespace. */
export function leftovers(bpffsDir: string): { taps: string[]; routes: string[]; nft: boolean; pinned: string[]; forward: string } {
  const taps = sh("ip -o link show").split("\n").map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? "").filter((n) => n.startsWith("obx"));
  const routes = sh("ip route show table all proto 111").split("\n").filter(Boolean);
  const nft = Bun.spawnSync(["nft", "list", "table", "ip", "onebox"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  const pinned = sh(`find ${bpffsDir}/onebox 2>/dev/null || true`).split("\n").filter(Boolean);
  const forward = sh("cat /proc/sys/net/ipv4/ip_forward").trim();
  return { taps, routes, nft, pinned, forward };
}

/** Inside a scenario: the ids of the tc programs on a link (ingress and egress). */
export function tcProgIds(dev: string): number[] {
  const ids: number[] = [];
  for (const dir of ["ingress", "egress"]) {
    for (const m of sh(`tc filter show dev ${dev} ${dir}`).matchAll(/ id (\d+)/g)) ids.push(Number(m[1]));
  }
  return ids;
}

export function progExists(id: number): boolean {
  return Bun.spawnSync(["bpftool", "prog", "show", "id", String(id)], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
}
