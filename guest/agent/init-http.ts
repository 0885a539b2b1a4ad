// POST /init, GET /envs and GET /metrics (e2b-protocol.md §3.4).
import { cpus } from "node:os";
import { readFileSync, statfsSync } from "node:fs";
import { AGENT_HYGIENE_HEADER, ENVD_VERSION } from "../protocol.ts";
import { applyHygiene, parseHygiene, realHygieneSystem, type HygieneSystem } from "./clone-hygiene.ts";
import { setClock } from "./libc.ts";
import type { AgentState } from "./state.ts";
import { httpError } from "./files-http.ts";
import { safeEqual } from "./signature.ts";

const MAX_INIT_BYTES = 1024 * 1024;
/** §3.4: fix the clock if it is more than 50 ms behind or 5 s ahead of the caller's timestamp. */
const CLOCK_BEHIND_MS = 50;
const CLOCK_AHEAD_MS = 5000;

/** True when the local clock is more than 50 ms behind or 5 s ahead of the caller's (§3.4). */
export function clockNeedsFix(nowMs: number, callerMs: number): boolean {
  return nowMs < callerMs - CLOCK_BEHIND_MS || nowMs > callerMs + CLOCK_AHEAD_MS;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
}

/** sys: what clone hygiene does to the system (a test's own; clone-hygiene.ts). */
export async function postInit(req: Request, state: AgentState, sys: HygieneSystem = realHygieneSystem): Promise<Response> {
  const text = await req.text();
  if (text.length > MAX_INIT_BYTES) return httpError(400, "init body too large");
  let body: Record<string, unknown> = {};
  if (text.trim() !== "") {
    try {
      const v = JSON.parse(text);
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error();
      body = v;
    } catch {
      return httpError(400, "init body must be a JSON object");
    }
  }
  const { envVars, accessToken, defaultUser, defaultWorkdir, timestamp } = body;
  // A restored clone's clock, entropy and identity (sent by onebox after a restore, not by the SDK).
  const hygiene = body.hygiene === undefined ? undefined : parseHygiene(body.hygiene);
  if (typeof hygiene === "string") return httpError(400, hygiene);
  if (envVars !== undefined && envVars !== null && !isStringMap(envVars)) return httpError(400, "envVars must map strings to strings");
  for (const [k, v] of [["accessToken", accessToken], ["defaultUser", defaultUser], ["defaultWorkdir", defaultWorkdir], ["timestamp", timestamp]] as const) {
    if (v !== undefined && v !== null && typeof v !== "string") return httpError(400, `${k} must be a string`);
  }
  const newToken = typeof accessToken === "string" && accessToken !== "" ? accessToken : undefined;
  // Once a token is set, only a caller that knows it may re-initialise (and so change or clear
  // it), like envd: the same token in the body, or the current one in X-Access-Token (resumes
  // send it, §3.4). Processes inside the sandbox reach this port too.
  if (state.accessToken !== undefined) {
    const header = req.headers.get("x-access-token");
    const knows = (newToken !== undefined && safeEqual(newToken, state.accessToken)) || (header !== null && safeEqual(header, state.accessToken));
    if (!knows) return httpError(401, "access token is already set: send the current one in X-Access-Token to change it");
  }
  const ts = typeof timestamp === "string" ? Date.parse(timestamp) : NaN;
  if (typeof timestamp === "string" && !Number.isFinite(ts)) return httpError(400, "timestamp must be RFC 3339");
  // Retries may arrive out of order: only a newer (or untimed) request changes the state.
  if (Number.isFinite(ts) && ts <= state.lastInitAt) return initDone();
  if (Number.isFinite(ts)) state.lastInitAt = ts;
  if (isStringMap(envVars)) state.envVars = { ...envVars };
  state.accessToken = newToken;
  if (typeof defaultUser === "string" && defaultUser !== "") state.defaultUser = defaultUser;
  if (typeof defaultWorkdir === "string" && defaultWorkdir !== "") state.defaultWorkdir = defaultWorkdir;
  if (hygiene) {
    // After the token check: only the host (or a caller that knows the token) re-identifies a clone. Its clock is
    // exact, so the coarse fix below is not needed.
    try {
      applyHygiene(hygiene, sys);
    } catch (e) {
      return httpError(500, `clone hygiene: ${(e as Error).message}`);
    }
    return initDone(true);
  }
  if (Number.isFinite(ts) && clockNeedsFix(Date.now(), ts)) setClock(ts);
  return initDone();
}

/** hygiene: the request's clone hygiene was applied (the host then sends none over the control channel). */
function initDone(hygiene = false): Response {
  const headers: Record<string, string> = { "X-Envd-Version": ENVD_VERSION, "Cache-Control": "no-store" };
  if (hygiene) headers[AGENT_HYGIENE_HEADER] = "applied";
  return new Response(null, { status: 204, headers });
}

export function getEnvs(state: AgentState): Response {
  return Response.json(state.envVars);
}

let lastCpu: { busy: number; total: number } | undefined;

function cpuSample(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of readFileSync("/proc/meminfo", "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+)\s*kB/.exec(l);
    if (m) out[m[1]!] = Number(m[2]) * 1024;
  }
  return out;
}

/** Metrics from /proc (§3.4); CPU use is the average since the previous call (or over 100 ms). */
export async function getMetrics(): Promise<Response> {
  let prev = lastCpu;
  if (!prev) {
    prev = cpuSample();
    await Bun.sleep(100);
  }
  const cur = cpuSample();
  lastCpu = cur;
  const dt = cur.total - prev.total;
  const cpuPct = dt > 0 ? Math.round(((cur.busy - prev.busy) / dt) * 10000) / 100 : 0;
  const mem = meminfo();
  const total = mem.MemTotal ?? 0;
  const cache = (mem.Cached ?? 0) + (mem.SReclaimable ?? 0);
  // gopsutil's "used" (what envd reports): total - free - buffers - cache
  const used = Math.max(0, total - (mem.MemFree ?? 0) - (mem.Buffers ?? 0) - cache);
  let diskTotal = 0;
  let diskUsed = 0;
  try {
    const s = statfsSync("/");
    diskTotal = s.blocks * s.bsize;
    diskUsed = (s.blocks - s.bfree) * s.bsize;
  } catch {
    // no statfs: report zeros
  }
  return Response.json({
    ts: Math.floor(Date.now() / 1000),
    cpu_count: cpus().length,
    cpu_used_pct: cpuPct,
    mem_total: total,
    mem_used: used,
    mem_cache: cache,
    mem_total_mib: Math.floor(total / 1048576),
    mem_used_mib: Math.floor(used / 1048576),
    disk_used: diskUsed,
    disk_total: diskTotal,
  });
}
