// Row -> E2B JSON: Sandbox, SandboxDetail, ListedSandbox and SandboxMetric (spec §1.3), and templates (§1.4).
import type { AgentMetrics } from "../machine/agent-client.ts";
import { apiState } from "../sandbox/lifecycle.ts";
import { parseJsonObject } from "../sandbox/json-fields.ts";
import type { MetricSampleRow, SandboxRow, TemplateRow } from "../store/index.ts";
import { aliasesOf } from "../store/template-store.ts";
import { parseStoredNetwork } from "./network-body.ts";

/** Deprecated but required by the SDK; E2B returns this constant (spec §1.3). */
export const CLIENT_ID = "6532622b";

const iso = (ms: number) => new Date(ms).toISOString();
const state = (r: SandboxRow) => apiState(r.state);

export function sandboxJson(r: SandboxRow, domain: string) {
  return {
    sandboxID: r.id,
    templateID: r.templateId,
    clientID: CLIENT_ID,
    envdVersion: r.envdVersion,
    // Handed out only for secure sandboxes (v2 always, v1 when `secure`), spec §1.3.
    envdAccessToken: r.secure ? (r.envdAccessToken ?? undefined) : undefined,
    domain,
    // Issued on create with network.allowPublicTraffic: false; the data plane then requires it (src/proxy/access.ts).
    trafficAccessToken: r.trafficAccessToken ?? null,
    ...(r.alias ? { alias: r.alias } : {}),
  };
}

export function sandboxDetailJson(r: SandboxRow, domain: string) {
  return {
    ...sandboxJson(r, domain),
    cpuCount: r.cpuCount,
    memoryMB: r.memoryMb,
    diskSizeMB: r.diskSizeMb,
    startedAt: iso(r.startedAt),
    endAt: iso(r.endAt),
    state: state(r),
    metadata: parseJsonObject(r.metadata),
    allowInternetAccess: r.allowInternetAccess,
    ...(r.network ? { network: parseStoredNetwork(r.network) ?? undefined } : {}),
    lifecycle: { onTimeout: r.onTimeout === "pause" ? "pause" : "kill", autoResume: r.autoResume },
    volumeMounts: [],
  };
}

export function listedSandboxJson(r: SandboxRow) {
  return {
    sandboxID: r.id,
    templateID: r.templateId,
    ...(r.alias ? { alias: r.alias } : {}),
    clientID: CLIENT_ID,
    cpuCount: r.cpuCount,
    memoryMB: r.memoryMb,
    diskSizeMB: r.diskSizeMb,
    envdVersion: r.envdVersion,
    startedAt: iso(r.startedAt),
    endAt: iso(r.endAt),
    state: state(r),
    metadata: parseJsonObject(r.metadata),
    volumeMounts: [],
  };
}

/** The agent's /metrics sample as E2B's SandboxMetric (the agent reports seconds or ms). */
/** E2B's SandboxMetric; `networkDrops` (onebox's own, absent without networking): the packets the sandbox's network
 *  slot dropped since its vmm started, by reason (docs/network.md "Counting drops"). SDKs ignore the extra field. */
export function metricJson(guest: AgentMetrics, netDrops: Record<string, number> | null = null) {
  const ts = guest.ts > 1e12 ? guest.ts : guest.ts * 1000;
  return {
    timestamp: new Date(ts).toISOString(),
    timestampUnix: Math.floor(ts / 1000),
    cpuCount: guest.cpu_count,
    cpuUsedPct: guest.cpu_used_pct,
    memUsed: guest.mem_used,
    memTotal: guest.mem_total,
    memCache: guest.mem_cache ?? 0,
    diskUsed: guest.disk_used,
    diskTotal: guest.disk_total,
    ...(netDrops ? { networkDrops: netDrops } : {}),
  };
}

/** A recorded sample (the metrics history) as E2B's SandboxMetric. */
export function sampleJson(m: MetricSampleRow) {
  return {
    timestamp: new Date(m.ts).toISOString(),
    timestampUnix: Math.floor(m.ts / 1000),
    cpuCount: m.cpuCount,
    cpuUsedPct: m.cpuUsedPct,
    memUsed: m.memUsed,
    memTotal: m.memTotal,
    memCache: m.memCache,
    diskUsed: m.diskUsed,
    diskTotal: m.diskTotal,
  };
}

export function templateJson(t: TemplateRow) {
  const aliases = aliasesOf(t);
  return {
    templateID: t.id,
    // The API build's id; a template registered otherwise is its own build.
    buildID: t.buildId ?? t.id,
    cpuCount: t.cpuCount,
    memoryMB: t.memoryMb,
    diskSizeMB: t.diskSizeMb,
    public: t.public,
    aliases,
    names: aliases,
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
    createdBy: null,
    lastSpawnedAt: null,
    spawnCount: 0,
    buildCount: 1,
    envdVersion: t.envdVersion,
    buildStatus: "ready",
  };
}
