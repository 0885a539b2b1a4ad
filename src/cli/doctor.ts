// `onebox doctor`: can this host run sandboxes? /dev/kvm, hardware KVM vs PVM, the guest kernel, guest networking, and
// the Debian packages onebox runs (`onebox doctor --packages` lists them for install.sh).
import { parseArgs } from "node:util";
import { probeKvm, KVM_API_VERSION, type KvmProbe } from "../sys/kvm-probe.ts";
import { hostKindInfo, type HostKindInfo } from "../sys/host-kind.ts";
import { resolveGuestKernel, type GuestKernel } from "../sys/guest-kernel.ts";
import { checkNetwork, type NetworkReport } from "../net/host-checks.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openState } from "../store/index.ts";
import { DB_FILE } from "../store/data-dir-guard.ts";
import { snapshotStorage } from "../templates/snapshot-storage.ts";
import { envInt, envVar, parseConfig } from "../util/config.ts";
import { aptCommand, HOST_PACKAGES, missingHostPackages } from "../sys/host-packages.ts";

export interface DoctorReport {
  ok: boolean;
  kvm: KvmProbe;
  host: HostKindInfo;
  kernel: GuestKernel;
  /** What stops sandboxes from running, each with what to do. Empty when ok. */
  problems: string[];
  notes: string[];
  /** Guest networking (docs/network.md): kernel features and the sandbox range; not part of `ok`. */
  network?: NetworkReport;
  /** Whether the system resolver (glibc NSS: Python, Go, most tools) resolves getHost()'s `<port>-<id>.localhost`. */
  localhostNames: boolean;
  /** What snapshots and fork captures hold on disk against their bound; absent before the daemon's first start. */
  snapshots?: { count: number; mib: number; maxMib: number; perSandboxMib: number; largestSandboxMib: number };
  /** The Debian packages onebox runs (sys/host-packages.ts) that are not installed; not part of `ok` (each serves one
   *  feature: template builds, networking, TLS). */
  missingPackages: string[];
}

const PVM_ADVICE =
  "This host's /dev/kvm is PVM: a stock Linux kernel (such as the default Debian cloud kernel) does not " +
  "boot here. Build a guest kernel with CONFIG_PVM_GUEST=y and CONFIG_X86_PIE=y and point onebox at it: " +
  "`onebox serve --pvm-kernel PATH` or ONEBOX_PVM_KERNEL=PATH (check it first with `onebox doctor --kernel PATH`).";

const LOCALHOST_ADVICE =
  "getHost(port) names (<port>-<id>.localhost) do not resolve through this system's resolver: Bun, Node's fetch and " +
  "curl resolve *.localhost themselves, but Python, Go and most other clients ask the system. Fix: `apt-get install " +
  "libnss-myhostname` (it resolves every *.localhost name to loopback), or `onebox serve --domain NAME:PORT` with a " +
  "wildcard DNS record for *.NAME pointing at this host.";

/** True when glibc's resolver answers a name under .localhost (getent uses NSS, as Python and Go's cgo resolver do). */
function localhostNamesResolve(): boolean {
  const r = Bun.spawnSync(["getent", "ahostsv4", "8000-doctor.localhost"], { stdout: "pipe", stderr: "ignore", timeout: 5000 });
  return r.exitCode === 0 && r.stdout.toString().includes("127.");
}

export async function diagnose(opts: { device?: string; kernel?: string; initrd?: string; dataDir: string; sandboxCidr?: string }): Promise<DoctorReport> {
  const kvm = await probeKvm(opts.device);
  const host = hostKindInfo(kvm.ok);
  const kernel = resolveGuestKernel(opts);
  const problems: string[] = [];
  const notes: string[] = [];

  if (kvm.openError) {
    problems.push(
      kvm.openError === "ENOENT"
        ? `${kvm.device} does not exist: load kvm_intel or kvm_amd (modprobe), or use a machine with virtualization`
        : `${kvm.device} does not open (${kvm.openError}): run onebox as root or give it access to the device`,
    );
  } else if (kvm.apiVersion !== KVM_API_VERSION) {
    problems.push(`KVM_GET_API_VERSION returned ${kvm.apiVersion}, expected ${KVM_API_VERSION}: this KVM is not supported`);
  } else if (kvm.createVmError) {
    problems.push(`KVM_CREATE_VM failed (${kvm.createVmError}): another hypervisor may hold the CPU's virtualization, or the module is broken`);
  } else if (kvm.createVcpuError) {
    problems.push(`KVM_CREATE_VCPU failed (${kvm.createVcpuError})`);
  }

  if (kernel.format === "missing") {
    problems.push(
      kernel.source === "default"
        ? `no guest kernel at ${kernel.path}: run \`onebox template fetch-kernel\` (as root) to install Debian's cloud kernel`
        : `the guest kernel ${kernel.path} does not exist`,
    );
  } else if (kernel.format === "unknown") {
    problems.push(`${kernel.path} is neither a bzImage nor an ELF vmlinux`);
  }

  if (host.kind === "pvm") {
    if (kernel.source === "default") problems.push(PVM_ADVICE);
    else notes.push(`PVM host: ${kernel.path} must be a PVM guest kernel (CONFIG_PVM_GUEST=y, CONFIG_X86_PIE=y); doctor cannot tell from the file`);
  }
  if (!kernel.initrd) {
    notes.push("no initramfs built yet beside the kernel: the first template build makes it (scripts/mkinitramfs.sh: onebox-init and the kernel's modules)");
  }
  const network = opts.sandboxCidr ? await checkNetwork(opts.sandboxCidr) : undefined;
  const snapshots = snapshotReport(opts.dataDir);
  const localhostNames = localhostNamesResolve();
  if (!localhostNames) notes.push(LOCALHOST_ADVICE);
  const missing = missingHostPackages();
  if (missing.length) notes.push(`Debian packages onebox runs are missing (${missing.map((p) => `${p.name}: ${p.why}`).join("; ")}); install them: ${aptCommand(missing)}`);
  return { ok: problems.length === 0, kvm, host, kernel, problems, notes, network, localhostNames, ...(snapshots ? { snapshots } : {}), missingPackages: missing.map((p) => p.name) };
}

/** Snapshot storage from the data dir's database, counted as the daemon counts it; nothing is made when there is none. */
function snapshotReport(dataDir: string): DoctorReport["snapshots"] {
  if (!existsSync(join(dataDir, DB_FILE))) return undefined;
  let state: ReturnType<typeof openState>;
  try {
    state = openState(dataDir);
  } catch {
    return undefined; // not readable by this user, or not onebox's: doctor reports the host, not the data dir
  }
  try {
    const s = snapshotStorage(state.templates.list());
    const config = parseConfig({ snapshotStorageMaxMib: envInt("ONEBOX_SNAPSHOT_STORAGE_MAX_MIB"), snapshotStoragePerSandboxMib: envInt("ONEBOX_SNAPSHOT_STORAGE_PER_SANDBOX_MIB") });
    const mib = (b: number) => Math.round(b / (1024 * 1024));
    return {
      count: s.count,
      mib: mib(s.totalBytes),
      maxMib: config.snapshotStorageMaxMib,
      perSandboxMib: config.snapshotStoragePerSandboxMib,
      largestSandboxMib: mib(Math.max(0, ...s.bySandbox.values())),
    };
  } finally {
    state.close();
  }
}

function describeKvm(k: KvmProbe): string {
  if (k.openError) return `cannot open (${k.openError})`;
  const parts = [`API ${k.apiVersion}`, `KVM_CREATE_VM ${k.createVmError ?? "ok"}`, `KVM_CREATE_VCPU ${k.createVcpuError ?? "ok"}`];
  const split = k.caps.KVM_CAP_SPLIT_IRQCHIP;
  if (split !== undefined) parts.push(`split irqchip ${split > 0 ? "yes" : "no"}`);
  return parts.join(", ");
}

function describeHost(h: HostKindInfo): string {
  const name = h.kind === "hardware" ? `hardware KVM (${h.cpuVirt === "vmx" ? "Intel VT-x" : "AMD-V"})` : h.kind === "pvm" ? "PVM (kvm_pvm)" : "no usable KVM";
  return `${name}: ${h.reason}`;
}

export function formatReport(r: DoctorReport): string {
  const k = r.kernel;
  const kernelLine = `${k.path} (${k.source === "flag" ? "--kernel" : k.source === "env" ? "environment" : "default"}, ${k.format}${k.version ? `, ${k.version}` : ""})`;
  const lines = [
    `/dev/kvm      ${describeKvm(r.kvm)}`,
    `host          ${describeHost(r.host)}`,
    `guest kernel  ${kernelLine}`,
    `initramfs     ${k.initrd ?? "none yet"}`,
    `packages      ${r.missingPackages.length ? `missing ${r.missingPackages.join(", ")} (see the note below)` : `the ${HOST_PACKAGES.length} Debian packages onebox runs are installed`}`,
    `getHost names ${r.localhostNames ? "<port>-<id>.localhost resolves to loopback" : "<port>-<id>.localhost does not resolve (see the note below)"}`,
    ...(r.snapshots ? [`snapshots     ${r.snapshots.count}, ${r.snapshots.mib} MiB of ${r.snapshots.maxMib} MiB (one sandbox's at most ${r.snapshots.largestSandboxMib} of ${r.snapshots.perSandboxMib} MiB)`] : []),
    ...(r.network ? r.network.checks.map((c) => `${`net ${c.name}`.padEnd(13)} ${c.ok ? "" : "FAILED: "}${c.detail}`) : []),
    "",
    ...r.problems.map((p) => `problem: ${p}`),
    ...(r.network?.notes ?? []).map((n) => `note: ${n}`),
    ...(r.network && !r.network.ok ? ["note: sandboxes cannot have a network on this host until the FAILED checks above are fixed"] : []),
    ...r.notes.map((n) => `note: ${n}`),
    r.ok ? "sandboxes can run on this host" : "sandboxes cannot run on this host until the problems above are fixed",
  ];
  return lines.join("\n");
}

export async function runDoctor(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        json: { type: "boolean", default: false },
        kernel: { type: "string" },
        "pvm-kernel": { type: "string" },
        initrd: { type: "string" },
        device: { type: "string", default: "/dev/kvm" },
        "data-dir": { type: "string", default: envVar("ONEBOX_DATA_DIR") ?? "/var/lib/onebox" },
        "sandbox-cidr": { type: "string" },
        "no-network": { type: "boolean", default: false },
        packages: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    console.error(`onebox doctor: ${(e as Error).message}\nusage: onebox doctor [--json] [--kernel PATH] [--initrd PATH] [--data-dir DIR] [--sandbox-cidr CIDR] [--no-network]\n       onebox doctor --packages   (the Debian packages onebox runs, one a line: install.sh installs them)`);
    return 2;
  }
  if (values.packages) {
    console.log(HOST_PACKAGES.map((p) => p.name).join("\n"));
    return 0;
  }
  const report = await diagnose({
    device: values.device,
    kernel: values.kernel ?? values["pvm-kernel"],
    initrd: values.initrd,
    dataDir: values["data-dir"],
    sandboxCidr: values["no-network"] ? undefined : parseConfig({ sandboxCidr: values["sandbox-cidr"] ?? envVar("ONEBOX_SANDBOX_CIDR") }).sandboxCidr,
  });
  console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.ok ? 0 : 1;
}
