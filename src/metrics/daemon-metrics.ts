// The daemon's Prometheus metrics (GET /metrics, docs/operations.md): counters and histograms that the create path
// and the data plane move as things happen, and gauges read from the daemon's state at scrape time. Names follow
// Prometheus conventions: `onebox_` prefix, `_total` counters, base units (seconds, bytes).
import { Counter, Gauge, Histogram, render, ScrapedCounter } from "./exposition.ts";

/** Seconds: emulated creates take seconds, real ones tens of milliseconds. */
const CREATE_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export type WarmPoolUse = "hit" | "miss" | "off";

/** What a scrape reads from the daemon's state (src/api/routes-metrics.ts gathers it). */
export interface ScrapeState {
  sandboxes: { state: string; template: string }[];
  warmPoolReady: { template: string; entries: number }[];
  claims: { cpus: number; memoryMib: number };
  budget: { cpus: number; memoryMib: number };
  /** Template id -> bytes its ready snapshots hold on disk (templates registered from images). */
  templateSnapshotBytes: { template: string; bytes: number }[];
  /** Sandbox snapshots and fork captures together. */
  snapshotStorage: { count: number; bytes: number };
  /** What the network slots denied since the daemon started, by reason (null: no guest networking). */
  networkDenied: Record<string, number> | null;
}

export class DaemonMetrics {
  private readonly creates = new Counter(
    "onebox_sandbox_creates_total",
    "Sandboxes created, by how the VM came up (mode: restore or cold_boot) and the warm pool (warm_pool: hit, miss, or off).",
  );
  private readonly createFailures = new Counter("onebox_sandbox_create_failures_total", "Creates that failed after admission, by the error's kind (reason).");
  private readonly createSeconds = new Histogram("onebox_sandbox_create_seconds", "Create time in the daemon, admission to running, by mode.", CREATE_BUCKETS);
  private readonly stageSeconds = new Histogram(
    "onebox_sandbox_create_stage_seconds",
    "Create time by stage (layer copy, vmm spawn or pooled restore, hygiene, ready, init), by mode.",
    CREATE_BUCKETS,
  );
  private readonly dataPlaneRequests = new Counter("onebox_dataplane_requests_total", "Data-plane requests answered, by status class (code: 2xx, 3xx, 4xx, 5xx).");
  private readonly dataPlaneBytes = new Counter(
    "onebox_dataplane_bytes_total",
    "HTTP body bytes the data plane forwarded, by direction (to_sandbox, from_sandbox); WebSocket frames are not counted.",
  );
  private readonly sandboxes = new Gauge("onebox_sandboxes", "Live sandboxes (not ended), by state and template.");
  private readonly warmPoolReady = new Gauge("onebox_warm_pool_ready_entries", "Warm pool entries ready to take, by template.");
  private readonly cpus = new Gauge("onebox_admission_vcpus", "vCPUs claimed by live sandboxes (kind: used) and the admission budget (kind: budget).");
  private readonly memory = new Gauge("onebox_admission_memory_bytes", "Guest memory claimed by live sandboxes (kind: used) and the admission budget (kind: budget).");
  private readonly templateSnapshotBytes = new Gauge("onebox_template_snapshot_bytes", "Bytes on disk of a template's ready snapshots (allocated), by template.");
  private readonly snapshotCount = new Gauge("onebox_sandbox_snapshots", "Sandbox snapshots and fork captures stored.");
  private readonly networkDenied = new ScrapedCounter(
    "onebox_network_denied_total",
    "Sandbox traffic the egress policy denied since the daemon started: packets the slots' eBPF programs dropped and connections the name proxy refused, by reason (docs/network.md).",
  );
  private readonly snapshotBytes = new Gauge("onebox_sandbox_snapshot_bytes", "Bytes on disk of sandbox snapshots and fork captures (allocated; a base image they link is not counted).");

  /** A create that reached running: its mode, whether the warm pool served it, and its stages in ms. */
  created(mode: "restore" | "cold-boot", warmPool: WarmPoolUse, stagesMs: Record<string, number>): void {
    const m = mode === "cold-boot" ? "cold_boot" : "restore";
    this.creates.inc({ mode: m, warm_pool: warmPool });
    for (const [stage, ms] of Object.entries(stagesMs)) {
      if (stage === "total") this.createSeconds.observe({ mode: m }, ms / 1000);
      else this.stageSeconds.observe({ mode: m, stage }, ms / 1000);
    }
  }

  createFailed(reason: string): void {
    this.createFailures.inc({ reason });
  }

  dataPlaneAnswered(status: number): void {
    this.dataPlaneRequests.inc({ code: `${Math.floor(status / 100)}xx` });
  }

  dataPlaneForwarded(direction: "to_sandbox" | "from_sandbox", n: number): void {
    this.dataPlaneBytes.inc({ direction }, n);
  }

  render(s: ScrapeState): string {
    this.sandboxes.reset();
    const byKey = new Map<string, { state: string; template: string; n: number }>();
    for (const r of s.sandboxes) {
      const k = `${r.state}\u0000${r.template}`;
      const cur = byKey.get(k) ?? { state: r.state, template: r.template, n: 0 };
      cur.n++;
      byKey.set(k, cur);
    }
    for (const v of byKey.values()) this.sandboxes.set({ state: v.state, template: v.template }, v.n);
    this.warmPoolReady.reset();
    for (const p of s.warmPoolReady) this.warmPoolReady.set({ template: p.template }, p.entries);
    this.cpus.set({ kind: "used" }, s.claims.cpus);
    this.cpus.set({ kind: "budget" }, s.budget.cpus);
    this.memory.set({ kind: "used" }, s.claims.memoryMib * 1024 * 1024);
    this.memory.set({ kind: "budget" }, s.budget.memoryMib * 1024 * 1024);
    this.templateSnapshotBytes.reset();
    for (const t of s.templateSnapshotBytes) this.templateSnapshotBytes.set({ template: t.template }, t.bytes);
    this.snapshotCount.set({}, s.snapshotStorage.count);
    this.snapshotBytes.set({}, s.snapshotStorage.bytes);
    this.networkDenied.reset();
    for (const [reason, n] of Object.entries(s.networkDenied ?? {})) this.networkDenied.set({ reason }, n);
    return render([
      this.sandboxes,
      this.creates,
      this.createFailures,
      this.createSeconds,
      this.stageSeconds,
      this.warmPoolReady,
      this.cpus,
      this.memory,
      this.templateSnapshotBytes,
      this.snapshotCount,
      this.snapshotBytes,
      this.dataPlaneRequests,
      this.dataPlaneBytes,
      ...(s.networkDenied ? [this.networkDenied] : []),
    ]);
  }
}
