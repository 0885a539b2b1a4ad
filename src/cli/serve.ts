// `onebox serve`: runs the control plane and the data plane on one port until SIGINT/SIGTERM.
import { startDaemon } from "../daemon.ts";
import { adminKeyPath } from "../api/admin-key.ts";
import { envInt, envList, envOn, envVar, parseConfig, type Config } from "../util/config.ts";
import { log } from "../util/log.ts";
import { bool, dataDirOf, int, parseArgs, str, strs } from "./args.ts";

export const SERVE_USAGE = `usage: onebox serve [--port 3000] [--listen 127.0.0.1] [--data-dir /var/lib/onebox]
       [--domain localhost:PORT] [--pvm-kernel PATH] [--run-root /run/onebox]
       [--cpu-budget N] [--memory-budget-mib N] [--max-concurrent-creates N] [--no-auth]
       [--source-dir DIR (default $ONEBOX_SOURCE_DIR)] [--no-default-templates] [--boot-timeout-ms 60000]
       [--no-template-snapshots (or ONEBOX_TEMPLATE_SNAPSHOTS=0): cold-boot every create]
       [--warm-pool N (or ONEBOX_WARM_POOL=N; default 2, 0 = off): vmms kept ready per template snapshot]
       [--idle-timeout-sec 30] [--max-connections 1024] [--max-client-connections 256] [--max-header-bytes 16384]
       [--console-log-max-mib N (or ONEBOX_CONSOLE_LOG_MAX_BYTES=B; default 1 MiB): cap of each VM's console log]
       [--sandbox-cidr 198.18.0.0/16 (or ONEBOX_SANDBOX_CIDR): sandbox addresses on the host] [--net-slot-pool 8]
       [--net-allow-private CIDR (repeatable, or ONEBOX_NET_ALLOW_PRIVATE=A,B): open an always-denied range
        (a private network, a host address) to every sandbox; their own denyOut still applies]
       [--no-network: sandboxes get no network (allowInternetAccess has no effect)]
       [--audit-retention-days 90]: how long the audit log (onebox audit export) keeps its rows
       [--metrics-interval-sec 5 (0 = no history)] [--metrics-retention-min 60]: each running sandbox's CPU,
        memory and disk sampled for GET /sandboxes/{id}/metrics?start&end
       [--snapshot-storage-max-mib 65536] [--snapshot-storage-per-sandbox-mib 16384] (or ONEBOX_SNAPSHOT_STORAGE_*_MIB):
        disk all snapshots and fork captures may hold, and the snapshots of one sandbox (0 = no snapshots)
       [--max-concurrent-builds 1] [--build-timeout-s 1800] [--max-build-upload-mib 1024]: template builds over the
        API (the SDK's Template.build(): docs/templates.md "Builds over the API")
       [--build-cache-mib 16384]: disk the build cache (step layers, COPY uploads, pulled images) may hold; the least
        recently used entries no running build needs go first
       [--tls] [--tls-port 3443]: https://<port>-<id>.<domain> (E2B code's "https://" + getHost(port)) on a second
        listener, with certificates from onebox's own CA; trust it with NODE_EXTRA_CA_CERTS (GET /tls/ca.crt)
On first start the default templates (base, code-interpreter-v1) are built in the background by the
template builder embedded in onebox (extracted to DATA/builder; a --source-dir checkout's scripts win);
each step is logged, with a log file per build in DATA/templates/logs (docs/templates.md).`;

const secToMs = (s: number | undefined) => (s === undefined ? undefined : s * 1000);
const mibToBytes = (mib: number | undefined) => (mib === undefined ? undefined : mib * 1024 * 1024);

const SERVE_BOOLEANS = ["no-auth", "no-default-templates", "no-template-snapshots", "no-network", "tls", "help"];

export async function serveCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, SERVE_BOOLEANS);
  if (bool(a, "help")) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const config = serveConfig(argv);
  const daemon = await startDaemon(config);
  if (daemon.newAdminKey) {
    // Printed once: it is stored hashed; the file copy is for the local admin.
    console.log(`admin API key (saved to ${adminKeyPath(config.dataDir)}, shown only now): ${daemon.newAdminKey}`);
  }
  console.log(`onebox listening on ${daemon.url} (E2B_API_URL=E2B_SANDBOX_URL=${daemon.url})`);
  if (daemon.tls) {
    console.log(
      `TLS for getHost() URLs on port ${daemon.tls.port}; trust onebox's CA (${daemon.tls.caPath}): ` +
        `curl -s ${daemon.url}/tls/ca.crt -o onebox-ca.crt && export NODE_EXTRA_CA_CERTS=$PWD/onebox-ca.crt`,
    );
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info(`received ${sig}; stopping (sandboxes keep running and are re-adopted on the next start)`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  // Bounded: a stuck close must not keep a stopping daemon alive.
  await Promise.race([daemon.close(), Bun.sleep(5000)]);
  // The VM processes live on by design; their control sockets and child watchers would keep this
  // process's event loop alive, so leave explicitly (the CLI, not library code, ends the process).
  process.exit(0);
}

/** The daemon's config from `onebox serve`'s flags and the ONEBOX_* variables (flags win). */
export function serveConfig(argv: string[]): Config {
  const a = parseArgs(argv, SERVE_BOOLEANS);
  return parseConfig({
    port: int(a, "port"),
    listen: str(a, "listen"),
    dataDir: dataDirOf(a),
    runRoot: str(a, "run-root"),
    domain: str(a, "domain"),
    pvmKernel: str(a, "pvm-kernel") ?? envVar("ONEBOX_PVM_KERNEL"),
    cpuBudget: int(a, "cpu-budget"),
    memoryBudgetMib: int(a, "memory-budget-mib"),
    maxConcurrentCreates: int(a, "max-concurrent-creates"),
    auth: !bool(a, "no-auth"),
    sourceDir: str(a, "source-dir") ?? envVar("ONEBOX_SOURCE_DIR"),
    buildDefaultTemplates: !bool(a, "no-default-templates"),
    bootTimeoutMs: int(a, "boot-timeout-ms"),
    templateSnapshots: !bool(a, "no-template-snapshots") && envOn("ONEBOX_TEMPLATE_SNAPSHOTS"),
    warmPoolSize: int(a, "warm-pool") ?? envInt("ONEBOX_WARM_POOL"),
    idleTimeoutSec: int(a, "idle-timeout-sec"),
    maxConnections: int(a, "max-connections"),
    maxClientConnections: int(a, "max-client-connections"),
    maxHeaderBytes: int(a, "max-header-bytes"),
    consoleLogMaxBytes: mibToBytes(int(a, "console-log-max-mib")) ?? envInt("ONEBOX_CONSOLE_LOG_MAX_BYTES"),
    sandboxCidr: str(a, "sandbox-cidr") ?? envVar("ONEBOX_SANDBOX_CIDR"),
    netSlotPoolSize: int(a, "net-slot-pool"),
    tls: bool(a, "tls"),
    tlsPort: int(a, "tls-port"),
    netAllowPrivate: strs(a, "net-allow-private") ?? envList("ONEBOX_NET_ALLOW_PRIVATE"),
    network: !bool(a, "no-network"),
    auditRetentionDays: int(a, "audit-retention-days"),
    metricsIntervalSec: int(a, "metrics-interval-sec"),
    metricsRetentionMin: int(a, "metrics-retention-min"),
    maxConcurrentBuilds: int(a, "max-concurrent-builds"),
    buildTimeoutMs: secToMs(int(a, "build-timeout-s")),
    maxBuildUploadBytes: mibToBytes(int(a, "max-build-upload-mib")),
    buildCacheBytes: mibToBytes(int(a, "build-cache-mib")),
    snapshotStorageMaxMib: int(a, "snapshot-storage-max-mib") ?? envInt("ONEBOX_SNAPSHOT_STORAGE_MAX_MIB"),
    snapshotStoragePerSandboxMib: int(a, "snapshot-storage-per-sandbox-mib") ?? envInt("ONEBOX_SNAPSHOT_STORAGE_PER_SANDBOX_MIB"),
  });
}
