// The metrics history (issue 19 item 2, E2B's getMetrics with a time range): every interval, each running sandbox's
// guest is asked for its CPU, memory and disk (the agent's /metrics: capped and deadlined, machine/agent-client.ts)
// and the sample goes into SQLite; samples older than the retention are deleted as it goes.
import type { MetricsStore } from "../store/index.ts";
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";

/** Guests asked at once: a round over many sandboxes must not open hundreds of vsock connections together. */
const CONCURRENCY = 8;

export class MetricsSampler {
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;
  private failuresLogged = 0;

  constructor(
    private readonly ctx: SandboxCtx,
    private readonly store: MetricsStore,
    private readonly intervalMs: number,
    private readonly retentionMs: number,
  ) {}

  /** Starts the rounds (none when the interval is 0). */
  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.round(), this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One round: a sample of every running sandbox, then retention. A round still running when the next is due
   *  makes that one skip (a slow guest delays samples, it does not pile up requests). */
  async round(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const rows = this.ctx.reg.rows.live().filter((r) => r.state === "running");
      let next = 0;
      const worker = async () => {
        while (next < rows.length) {
          const row = rows[next++]!;
          const live = this.ctx.reg.live.get(row.id);
          if (!live) continue;
          try {
            const m = await this.ctx.guest.metrics(live.runDir, row.envdAccessToken);
            this.store.insert({
              sandboxId: row.id,
              ts: Date.now(),
              cpuCount: m.cpu_count,
              cpuUsedPct: m.cpu_used_pct,
              memUsed: m.mem_used,
              memTotal: m.mem_total,
              memCache: m.mem_cache ?? 0,
              diskUsed: m.disk_used,
              diskTotal: m.disk_total,
            });
          } catch (e) {
            // A sandbox ending, pausing or busy misses a sample; logged a few times only (it would repeat every round).
            if (this.failuresLogged++ < 20) log.info("metrics sample missed", { id: row.id, error: e instanceof Error ? e.message : String(e) });
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, rows.length) }, worker));
      this.store.prune(Date.now() - this.retentionMs);
    } finally {
      this.busy = false;
    }
  }
}
