// The daemon's configuration: one zod schema, defaults in one place, types from z.infer.
import { z } from "zod";

export const ConfigSchema = z.object({
  port: z.number().int().min(0).max(65535).default(3000),
  listen: z.string().min(1).default("127.0.0.1"),
  dataDir: z.string().min(1).default("/var/lib/onebox"),
  /** Per-VM sockets live in `<runRoot>/vms/<id>/` (docs/architecture.md). */
  runRoot: z.string().min(1).default("/run/onebox"),
  /** Returned as `domain` so getHost(port) = `<port>-<id>.<domain>` routes back here (spec §2.4 item 2). */
  /** Defaults to `localhost:<port actually bound>`, set when the server starts. */
  domain: z.string().min(1).optional(),
  /** Admission budgets (scheduler): vCPUs and MiB of guest memory the sandboxes may claim in total. */
  cpuBudget: z.number().int().min(1).default(64),
  memoryBudgetMib: z.number().int().min(128).default(16384),
  maxConcurrentCreates: z.number().int().min(1).max(64).default(4),
  /** Seconds a client waits before retrying a create refused because the host is full. */
  retryAfterSec: z.number().int().min(1).default(3),
  bootTimeoutMs: z.number().int().min(1000).default(60000),
  /** A PVM guest kernel (CONFIG_PVM_GUEST=y, CONFIG_X86_PIE=y), needed on PVM hosts (DESIGN.md §3). */
  pvmKernel: z.string().min(1).optional(),
  /** HTTP (issue 11): seconds a connection may stay silent (keep-alive, slow headers or body) before it
   *  is closed; data-plane requests turn it off once their body is sent (streams may stay silent). */
  idleTimeoutSec: z.number().int().min(1).max(255).default(30),
  /** Requests, streams and WebSockets held open at once: in total, and per client address. */
  maxConnections: z.number().int().min(1).default(1024),
  maxClientConnections: z.number().int().min(1).default(256),
  /** Largest request head (request line and headers) answered with more than a JSON 431. */
  maxHeaderBytes: z.number().int().min(1024).max(1 << 20).default(16384),
  /** Largest accepted control-plane request body. */
  maxBodyBytes: z.number().int().min(1024).default(1 << 20),
  /** Template builds over the API (src/builds): the largest COPY upload (the SDK's gzipped tar), the time a build
   *  may take in all, and how many run at once (each boots a build VM). */
  maxBuildUploadBytes: z.number().int().min(1024).default(1 << 30),
  buildTimeoutMs: z.number().int().min(1000).default(30 * 60_000),
  maxConcurrentBuilds: z.number().int().min(1).max(4).default(1),
  /** Disk the build cache may hold (step layers, COPY uploads, pulled images: src/builds/cache-quota.ts); past it
   *  the least recently used entries no build in flight holds are removed, and an upload that still does not fit
   *  is refused (413). */
  buildCacheBytes: z.number().int().min(1 << 20).default(16 * 1024 * 1024 * 1024),
  auth: z.boolean().default(true),
  /** A onebox checkout whose scripts build the default templates on first start (install.sh sets it). */
  sourceDir: z.string().min(1).optional(),
  buildDefaultTemplates: z.boolean().default(true),
  /** Create by restoring each template's ready snapshot (docs/snapshot.md); off = cold-boot every create
   *  (ONEBOX_TEMPLATE_SNAPSHOTS=0: the baseline of bench:first-result, and for debugging). */
  templateSnapshots: z.boolean().default(true),
  /** Warm pool (docs/architecture.md "Warm pool"): per template with a snapshot, this many vmms are kept
   *  prepared (machine, devices, sockets, layer copy) so a create only restores into one. 0 = off
   *  (`--warm-pool N`, ONEBOX_WARM_POOL). Ignored when templateSnapshots is off. */
  warmPoolSize: z.number().int().min(0).max(32).default(2),
  /** Size cap of each VM's serial console log on the host (the guest writes it): past it the vmm keeps the newest
   *  half (docs/vmm.md "Console log"). `--console-log-max-mib N` or ONEBOX_CONSOLE_LOG_MAX_BYTES; 64 KiB..1 TiB. */
  consoleLogMaxBytes: z.number().int().min(64 * 1024).max(2 ** 40).default(1 << 20),
  /** Guest networking (docs/network.md): each sandbox's own address on the host comes from this range. The default is
   *  RFC 2544's benchmarking block (198.18.0.0/15, first half): never routed on the internet and almost never used by
   *  LANs, VPNs or clouds (unlike 10/8, 172.16/12, 192.168/16 and 100.64/10). `--sandbox-cidr` or ONEBOX_SANDBOX_CIDR. */
  sandboxCidr: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, "a CIDR range like 198.18.0.0/16").default("198.18.0.0/16"),
  /** Guest networking on (docs/network.md); `--no-network` turns it off. The daemon sets it false when the host
   *  cannot have it (no libonebox-net/libbpf, no /dev/net/tun, not root): sandboxes then have no network. */
  network: z.boolean().default(true),
  /** Always-denied ranges the operator opens to every sandbox (docs/network.md "Egress policy"): a private network
   *  or a host address sandboxes must reach. `--net-allow-private CIDR` (repeated) or ONEBOX_NET_ALLOW_PRIVATE
   *  (comma-separated). A sandbox's own denyOut still applies. */
  netAllowPrivate: z.array(z.string().refine(isIpv4Range, "an IPv4 address or CIDR range like 10.1.0.0/16")).max(256).default([]),
  /** Snapshot storage bounds (docs/api.md "Snapshots"): MiB on disk that all snapshots and fork captures may hold
   *  together, and that the snapshots of one sandbox may hold. A snapshot that could pass either is refused (507)
   *  before anything is written. `--snapshot-storage-max-mib` / ONEBOX_SNAPSHOT_STORAGE_MAX_MIB and
   *  `--snapshot-storage-per-sandbox-mib` / ONEBOX_SNAPSHOT_STORAGE_PER_SANDBOX_MIB; 0 = no snapshots. */
  snapshotStorageMaxMib: z.number().int().min(0).default(65536),
  snapshotStoragePerSandboxMib: z.number().int().min(0).default(16384),
  /** Metrics history (GET /sandboxes/{id}/metrics with a range, src/sandbox/metrics-sampler.ts): each running
   *  sandbox's guest is sampled every `metricsIntervalSec` (0 = no history: only the current sample is answered) and
   *  samples are kept `metricsRetentionMin` minutes. `--metrics-interval-sec`, `--metrics-retention-min`. */
  metricsIntervalSec: z.number().int().min(0).max(3600).default(5),
  metricsRetentionMin: z.number().int().min(1).max(7 * 24 * 60).default(60),
  /** Audit log retention (src/store/audit-store.ts): rows older than this many days are deleted (hourly and at
   *  start). `--audit-retention-days`. */
  auditRetentionDays: z.number().int().min(1).max(3650).default(90),
  /** TLS on the data plane (`--tls`, docs/api.md "TLS for getHost()"): a second listener on `tlsPort` serves
   *  `https://<port>-<id>.<domain>` with certificates from onebox's own CA (<dataDir>/tls); the returned `domain`
   *  then names that port, so E2B code's `https://` + getHost(port) works unchanged. Plain HTTP stays on `port`. */
  tls: z.boolean().default(false),
  tlsPort: z.number().int().min(0).max(65535).default(3443),
  /** Network slots (TAP + programs) made ahead of creates (`--net-slot-pool N`). */
  netSlotPoolSize: z.number().int().min(0).max(256).default(8),
});

export type Config = z.infer<typeof ConfigSchema>;

/** `a.b.c.d` or `a.b.c.d/n`: octets 0..255, n 0..32. */
function isIpv4Range(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s);
  return m !== null && m.slice(1, 5).every((o) => Number(o) <= 255) && (m[5] === undefined || Number(m[5]) <= 32);
}

export function parseConfig(input: unknown): Config {
  return ConfigSchema.parse(input);
}

/** Every ONEBOX_* environment variable onebox reads (docs/architecture.md "Configuration"): read here and
 *  nowhere else, each when asked, so a test or a child process sees the value of that moment. */
export const ONEBOX_ENV = [
  "ONEBOX_DATA_DIR",
  "ONEBOX_SOURCE_DIR",
  "ONEBOX_PVM_KERNEL",
  "ONEBOX_KERNEL",
  "ONEBOX_INITRD",
  "ONEBOX_TEST_KERNEL",
  "ONEBOX_TEMPLATE_SNAPSHOTS",
  "ONEBOX_WARM_POOL",
  "ONEBOX_CONSOLE_LOG_MAX_BYTES",
  "ONEBOX_SNAPSHOT_STORAGE_MAX_MIB",
  "ONEBOX_SNAPSHOT_STORAGE_PER_SANDBOX_MIB",
  "ONEBOX_VMM_JAIL",
  "ONEBOX_VMM_CGROUP",
  "ONEBOX_LOG",
  "ONEBOX_SANDBOX_CIDR",
  "ONEBOX_NET_ALLOW_PRIVATE",
] as const;
export type OneboxEnv = (typeof ONEBOX_ENV)[number];

/** The variable's value as set (an empty value is returned as such). */
export function envVar(name: OneboxEnv): string | undefined {
  return process.env[name];
}

/** An integer variable, or undefined when unset or empty; anything else is a clear error. */
export function envInt(name: OneboxEnv): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got '${v}'`);
  return n;
}

/** A comma-separated list variable (empty entries dropped), or undefined when unset. */
export function envList(name: OneboxEnv): string[] | undefined {
  const v = process.env[name];
  return v === undefined ? undefined : v.split(",").map((x) => x.trim()).filter(Boolean);
}

/** Debugging switches that are on unless set to "0" (ONEBOX_VMM_JAIL, ONEBOX_VMM_CGROUP, ONEBOX_TEMPLATE_SNAPSHOTS). */
export function envOn(name: OneboxEnv): boolean {
  return process.env[name] !== "0";
}
