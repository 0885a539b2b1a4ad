// The composition root: assembles the daemon from its parts (state, admin key, VMM driver, guest network, sandbox manager,
// scheduler, API, data plane) and is the only file that knows them all.
import type { Server } from "bun";
import { secretsFromRows } from "./proxy/access.ts";
import { DataPlane, type DataAudit } from "./proxy/data-plane.ts";
import type { SandboxPort } from "./proxy/sandbox-port.ts";
import type { WsBridge } from "./proxy/websocket.ts";
import { Admission } from "./scheduler/admission.ts";
import { startNetwork, stopNetwork } from "./machine/guest-network.ts";
import type { Network } from "./net/network.ts";
import { SandboxManager } from "./sandbox/manager.ts";
import { DefaultTemplateBuilder } from "./templates/build-default.ts";
import { loadVmDriver, type VmDriverResult } from "./machine/vm-driver.ts";
import { openState, type State } from "./store/index.ts";
import type { Config } from "./util/config.ts";
import { log } from "./util/log.ts";
import { ensureAdminKey } from "./api/admin-key.ts";
import { createApi } from "./api/app.ts";
import { startServer } from "./api/server.ts";
import { startTls } from "./proxy/tls.ts";

export interface Daemon {
  server: Server<WsBridge>;
  state: State;
  manager: SandboxManager;
  templateBuilds?: DefaultTemplateBuilder;
  /** Guest networking, when this daemon has it (machine/guest-network.ts). */
  network: Network | null;
  url: string;
  /** The admin key if this start created it (printed once by `onebox serve`). */
  newAdminKey: string | null;
  /** TLS on the data plane (--tls): its port and onebox's CA certificate. */
  tls: { port: number; caPath: string } | null;
  /** Stops listening and detaches from VMs (they keep running and are re-adopted next start). */
  close(): Promise<void>;
}

export async function startDaemon(config: Config, driver?: VmDriverResult): Promise<Daemon> {
  const state = openState(config.dataDir);
  const newAdminKey = config.auth ? ensureAdminKey(state.keys, config.dataDir) : null;
  const drv = driver ?? (await loadVmDriver());
  if (!drv.ok) log.warn("sandboxes cannot start", { problem: drv.problem });
  // Networking needs the real VMM (a test's driver has no TAP to hand over) and a host that has it.
  const net = drv.ok && !driver ? await startNetwork(config) : null;
  // The template snapshot key follows it (a snapshot made with a net device restores only with one).
  config.network = net !== null;
  const manager = new SandboxManager(state, config, drv, { net: net?.slots ?? null });
  const recovered = await manager.recover();
  if (recovered.adopted || recovered.ended) log.info("recovered sandboxes", recovered);
  manager.startMetricsHistory();
  // One aggregate query per create (sandboxes_live_claims), not a read of every live row.
  const admission = new Admission(config, () => state.sandboxes.claims());
  let templateBuilds: DefaultTemplateBuilder | undefined;
  // With the builder embedded in the binary (templates/builder-files.ts) no checkout is needed; a sourceDir wins.
  if (config.buildDefaultTemplates) {
    templateBuilds = new DefaultTemplateBuilder(state, config.dataDir, config.sourceDir);
  }
  // Snapshot every template that has none yet, and the default ones once built, so creates restore.
  const warm = () => manager.warmTemplates().catch((e) => log.warn("template snapshots", { error: String(e) }));
  void warm();
  if (templateBuilds) void templateBuilds.start().then(warm);
  const api = createApi({ config, state, manager, admission, templateBuilds });
  const sandboxes: SandboxPort = {
    routeOrResume: (id) => manager.routeOrResume(id),
    runningTokens: () => manager.runningTokens(),
    secrets: secretsFromRows(state.sandboxes),
  };
  // Data-plane audit rows name the key that created the sandbox: those requests carry the sandbox's token, not a key.
  const auditData = (e: DataAudit) =>
    state.audit.append({ at: Date.now(), keyId: state.sandboxes.get(e.sandboxId)?.keyId ?? null, plane: "data", op: e.op, sandboxId: e.sandboxId, detail: e.detail, status: e.status ?? null });
  const dataPlane = new DataPlane(sandboxes, (status) => manager.daemonMetrics.dataPlaneAnswered(status), (e) => {
    try {
      auditData(e);
    } catch (err) {
      log.error("audit log write failed", { op: e.op, error: String(err) });
    }
  }, (direction, n) => manager.daemonMetrics.dataPlaneForwarded(direction, n));
  const server = startServer(config, api, dataPlane);
  // With --port 0 the bound port is known only now; routes read config at request time.
  config.port = server.port ?? config.port;
  const tls = config.tls ? await startTls(config, (id) => (state.sandboxes.get(id)?.state ?? "ended") !== "ended").catch(async (e: unknown) => {
    await server.stop(true);
    throw e;
  }) : null;
  // The audit log's retention: at start, then hourly.
  const pruneAudit = () => {
    const n = state.audit.prune(Date.now() - config.auditRetentionDays * 86_400_000);
    if (n) log.info("audit log rows past the retention removed", { rows: n, days: config.auditRetentionDays });
  };
  pruneAudit();
  const auditTimer = setInterval(pruneAudit, 3_600_000);
  auditTimer.unref?.();
  const url = `http://${config.listen.includes(":") ? `[${config.listen}]` : config.listen}:${server.port}`;
  let closed = false;
  return {
    server,
    state,
    manager,
    templateBuilds,
    network: net?.network ?? null,
    url,
    newAdminKey,
    tls: tls ? { port: tls.port, caPath: tls.caPath } : null,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(auditTimer);
      await manager.detachAll();
      if (net) await stopNetwork(net);
      await tls?.stop();
      await server.stop(true);
      state.close();
    },
  };
}
