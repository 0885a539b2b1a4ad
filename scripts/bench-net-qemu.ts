// bench:net's baseline: the same curl workload from a guest on QEMU's own virtio-net (virtio-net-pci on a TAP, vhost off).
// The guest: the same Debian kernel, a busybox /init (scripts/bench-net-qemu-init.sh) that chroots into the same
// base image read-only and runs curl; QEMU -M q35 -accel kvm, 1 vCPU, 256 MiB (as the bench's sandboxes). The TAP
// gets 192.0.2.1/24 (TEST-NET-1), the guest 192.0.2.2; the server's address is one of the host's own, so packets
// are delivered locally as onebox's are (no forwarding, no NAT needed).
import { join } from "node:path";
import { REPO } from "./bench-lib.ts";

const TAP = "bnqtap0"; // not obx*: the daemon's own TAPs are named so

export interface QemuNetResult {
  /** curl's speed_download of each fetch of `bigUrl`, bytes/s. */
  speeds: number[];
  /** time_total of each small request, ms. */
  rtts: number[];
  /** eth0's counters across the untimed download (null if the guest did not print them). */
  rx: NetStat | null;
}

/** What one download cost in the guest: its virtio-net device's interrupts, rx frames and bytes, tx frames. */
export interface NetStat {
  irqs: number;
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
}

/** The difference of two lines "irqs rx_packets rx_bytes tx_packets" (NETSTAT in bench-net.ts, netstat() in the init). */
export function netStatDelta(before: string, after: string): NetStat | null {
  const a = before.trim().split(/\s+/).map(Number);
  const b = after.trim().split(/\s+/).map(Number);
  if (a.length !== 4 || b.length !== 4 || [...a, ...b].some((x) => !Number.isFinite(x))) return null;
  const d = b.map((x, i) => x - a[i]!);
  return { irqs: d[0]!, rxFrames: d[1]!, rxBytes: d[2]!, txFrames: d[3]! };
}

/** "N rx frames of ~B bytes, T tx frames, I interrupts (x per rx frame)" for the log. */
export function describeNetStat(s: NetStat | null): string {
  if (!s) return "counters not read";
  const per = s.rxFrames ? (s.irqs / s.rxFrames).toFixed(2) : "-";
  return `${s.rxFrames} rx frames of ~${s.rxFrames ? Math.round(s.rxBytes / s.rxFrames) : 0} bytes, ${s.txFrames} tx frames, ${s.irqs} interrupts (${per} per rx frame)`;
}

function sh(cmd: string): void {
  const r = Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd} failed (${r.exitCode}): ${r.stdout}${r.stderr}`);
}

/** Boots the QEMU guest once: `fetches` downloads of `bigUrl`, then `requests` requests of `smallUrl`. */
export async function qemuNet(o: {
  root: string;
  kernel: string;
  modules: string;
  rootfs: string;
  bigUrl: string;
  smallUrl: string;
  fetches: number;
  requests: number;
}): Promise<QemuNetResult> {
  const initrd = join(o.root, "qemu-initramfs.cpio.gz");
  sh(
    `bash ${REPO}/scripts/mkinitramfs.sh --modules ${o.modules} --out ${initrd} --add-module virtio_pci ` +
      `--init ${REPO}/scripts/bench-net-qemu-init.sh --extra /bin/busybox:/bin/busybox`,
  );
  sh(`ip tuntap add dev ${TAP} mode tap && ip addr add 192.0.2.1/24 dev ${TAP} && ip link set ${TAP} up`);
  try {
    const cmdline = [
      "console=ttyS0 reboot=k panic=-1 quiet",
      "bench.ip=192.0.2.2/24 bench.gw=192.0.2.1",
      `bench.big=${o.bigUrl} bench.small=${o.smallUrl} bench.fetches=${o.fetches} bench.requests=${o.requests}`,
    ].join(" ");
    const p = Bun.spawn(
      [
        "qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1",
        "-nographic", "-nodefaults", "-no-reboot", "-serial", "stdio",
        "-kernel", o.kernel, "-initrd", initrd, "-append", cmdline,
        "-drive", `file=${o.rootfs},format=raw,if=virtio,readonly=on`,
        "-netdev", `tap,id=n0,ifname=${TAP},script=no,downscript=no,vhost=off`,
        "-device", "virtio-net-pci,netdev=n0,mac=02:00:c0:00:02:02,romfile=",
      ],
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    const timer = setTimeout(() => p.kill(), 600_000);
    // Matched anywhere in a line: the firmware's terminal reset codes precede the guest's first line.
    const out = (await new Response(p.stdout).text()).replaceAll("\r", "");
    clearTimeout(timer);
    const code = await p.exited;
    const speeds = [...out.matchAll(/BENCH-SPEED (\S+)$/gm)].map((m) => Number(m[1]));
    const rtts = [...out.matchAll(/BENCH-RTT (\S+)$/gm)].map((m) => Number(m[1]) * 1000);
    const stats = [...out.matchAll(/BENCH-NETSTAT (.+)$/gm)].map((m) => m[1]!);
    if (speeds.length !== o.fetches || rtts.length !== o.requests || [...speeds, ...rtts].some((x) => !(x > 0)))
      throw new Error(`the QEMU guest did not report its figures (exit ${code}):\n${out.slice(-3000)}${await new Response(p.stderr).text()}`);
    return { speeds, rtts, rx: stats.length === 2 ? netStatDelta(stats[0]!, stats[1]!) : null };
  } finally {
    Bun.spawnSync(["ip", "link", "del", TAP]);
  }
}
