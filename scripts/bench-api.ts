// Control-plane benchmark on this host: a real `onebox serve`, 10,000 sandbox rows via src/store, timed HTTP requests (no VM work).
//
// usage: bun run bench:api [--rows N] [--n N]
// Last line on stdout: JSON of measured p50/p99 in ms. Nothing here boots a VM: GET/list read the
// database, and create stops at the host check (503 on a host that cannot run Linux guests).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openState, type NewSandboxRow } from "../src/store/index.ts";
import { note, pct, startDaemon, timed, type Daemon } from "./bench-lib.ts";

const { values } = parseArgs({ options: { rows: { type: "string", default: "10000" }, n: { type: "string", default: "2000" } } });
const ROWS = Number(values.rows);
const N = Number(values.n);
if (!Number.isInteger(ROWS) || ROWS < 200) throw new Error(`--rows must be an integer >= 200, got '${values.rows}'`);
if (!Number.isInteger(N) || N < 100) throw new Error(`--n must be an integer >= 100, got '${values.n}'`);

const root = mkdtempSync(join(tmpdir(), "obx-bench-api-"));
const dataDir = join(root, "data");
const runRoot = join(root, "run");
mkdirSync(dataDir, { recursive: true });

// A complete-looking template (as in src/api/create-unavailable.test.ts), so create gets past the
// template lookup and admission and stops only at what the host itself lacks.
{
  const state = openState(dataDir);
  const dir = join(dataDir, "templates", "tplbench");
  mkdirSync(dir, { recursive: true });
  for (const f of ["rootfs.ext4", "layer.ext4", "vmlinuz"]) writeFileSync(join(dir, f), "");
  const now = Date.now();
  state.templates.insert({
    id: "tplbench", aliases: '["base"]', dir, kernel: join(dir, "vmlinuz"), initrd: null, cpuCount: 1, memoryMb: 256,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", createdAt: now, updatedAt: now,
  });
  state.close();
}

let d: Daemon | null = null;
let failed = false;
try {
  // Budgets far above 10,000 rows x (1 vCPU, 256 MiB): admission must let creates through to the
  // host check even with every bench row live, so step 5 times admission over the full table.
  d = await startDaemon({ dataDir, runRoot, quiet: true, extra: ["--cpu-budget", "1000000", "--memory-budget-mib", "1000000000"] });
  const D = d;
  const H = { "x-api-key": D.key };
  const req = async (path: string, want: number, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(D.url + path, { ...init, headers: { ...H, ...(init.headers ?? {}) } });
    if (res.status !== want) throw new Error(`${init.method ?? "GET"} ${path}: ${res.status} ${await res.text()}`);
    return res;
  };

  // 1. Create, before the rows exist (step 5 repeats it with the rows).
  const body = JSON.stringify({ templateID: "base", timeout: 60, metadata: { bench: "1" } });
  const create = (): Promise<void> =>
    req("/v2/sandboxes", 503, { method: "POST", body, headers: { "content-type": "application/json" } }).then(async (r) => {
      const m = ((await r.json()) as { message: string }).message;
      if (!m.startsWith("cannot start a sandbox: ")) throw new Error(`503 for another reason: ${m}`);
    });
  await timed(50, 1, create); // warm-up (JIT, prepared statements)
  const c1 = await timed(N / 2, 1, create);
  const c50 = await timed(N, 50, create);
  note(`POST /v2/sandboxes -> 503 (auth, JSON+zod body, template lookup, admission, host check): c1 p50 ${pct(c1, 50)} p99 ${pct(c1, 99)}; c50 p50 ${pct(c50, 50)} p99 ${pct(c50, 99)} ms`);

  // 2. Rows, inserted through the store into the live daemon's database (WAL: a second writer is fine).
  const T0 = Date.now();
  const state = openState(dataDir);
  const ids: string[] = [];
  const tIns = performance.now();
  state.sqlite.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      const id = `bench${String(i).padStart(15, "0")}`;
      ids.push(id);
      const row: NewSandboxRow = {
        id, templateId: "tplbench", alias: "base", state: "running", cpuCount: 1, memoryMb: 256, diskSizeMb: 512,
        envdVersion: "0.6.13", envdAccessToken: "tok",
        // 1 in 100 rows carries team=x: the filtered list then returns ROWS/100 rows.
        metadata: JSON.stringify({ idx: String(i), team: i % 100 === 0 ? "x" : "y" }),
        envVars: "{}", secure: true, startedAt: T0 - i * 1000, endAt: T0 + 3_600_000,
      };
      state.sandboxes.insert(row);
    }
  })();
  note(`inserted ${ROWS} rows through src/store in ${(performance.now() - tIns).toFixed(0)} ms`);
  const counted = state.sandboxes.count();
  state.close();

  // 3. GET /sandboxes/{id}: random existing rows.
  const pick = (): string => ids[Math.floor(Math.random() * ids.length)]!;
  const get = (): Promise<void> => req(`/sandboxes/${pick()}`, 200).then((r) => r.arrayBuffer()).then(() => undefined);
  await timed(100, 1, get);
  const g1 = await timed(N, 1, get);
  const g50 = await timed(N, 50, get);
  note(`GET /sandboxes/{id} over ${counted} rows: c1 p50 ${pct(g1, 50)} p99 ${pct(g1, 99)}; c50 p50 ${pct(g50, 50)} p99 ${pct(g50, 99)} ms`);

  // 4. Lists: first page, a full walk with nextToken, and a metadata filter.
  const LISTS = 100;
  const first = await timed(LISTS, 1, async () => {
    const items = (await (await req("/v2/sandboxes?limit=100", 200)).json()) as unknown[];
    if (items.length !== 100) throw new Error(`first page had ${items.length} items`);
  });
  const pages: number[] = [];
  let walked = 0;
  let token: string | null = null;
  const tWalk = performance.now();
  do {
    const t0 = performance.now();
    const res = await req(`/v2/sandboxes?limit=100${token ? `&nextToken=${encodeURIComponent(token)}` : ""}`, 200);
    walked += ((await res.json()) as unknown[]).length;
    pages.push(performance.now() - t0);
    token = res.headers.get("x-next-token");
  } while (token);
  const walkMs = performance.now() - tWalk;
  if (walked !== ROWS) throw new Error(`paged walk saw ${walked} rows, expected ${ROWS}`);
  const filt = await timed(LISTS, 1, async () => {
    const items = (await (await req(`/v2/sandboxes?limit=100&metadata=${encodeURIComponent("team=x")}`, 200)).json()) as unknown[];
    if (items.length !== Math.min(100, Math.ceil(ROWS / 100))) throw new Error(`filtered list had ${items.length} items`);
  });
  note(`GET /v2/sandboxes?limit=100 first page x${LISTS}: p50 ${pct(first, 50)} p99 ${pct(first, 99)} ms`);
  note(`paged walk: ${pages.length} pages, ${walked} rows, ${walkMs.toFixed(0)} ms total; per page p50 ${pct(pages, 50)} p99 ${pct(pages, 99)} ms`);
  note(`metadata=team=x (${Math.ceil(ROWS / 100)} matches) x${LISTS}: p50 ${pct(filt, 50)} p99 ${pct(filt, 99)} ms`);

  // 5. Create again with every row live: admission now sums the claims of ROWS live sandboxes.
  await timed(20, 1, create);
  const cr = await timed(N / 2, 1, create);
  note(`POST /v2/sandboxes -> 503 with ${ROWS} live rows: c1 p50 ${pct(cr, 50)} p99 ${pct(cr, 99)} ms`);

  console.log(
    JSON.stringify({
      get_p50_ms: pct(g1, 50), get_p99_ms: pct(g1, 99), get_c50_p50_ms: pct(g50, 50), get_c50_p99_ms: pct(g50, 99),
      list_p50_ms: pct(first, 50), list_p99_ms: pct(first, 99),
      list_walk_pages: pages.length, list_walk_total_ms: Math.round(walkMs), list_walk_page_p50_ms: pct(pages, 50), list_walk_page_p99_ms: pct(pages, 99),
      list_meta_p50_ms: pct(filt, 50), list_meta_p99_ms: pct(filt, 99), list_rows: walked,
      create_api_p50_ms: pct(c1, 50), create_api_p99_ms: pct(c1, 99), create_api_c50_p50_ms: pct(c50, 50), create_api_c50_p99_ms: pct(c50, 99),
      create_api_rows_p50_ms: pct(cr, 50), create_api_rows_p99_ms: pct(cr, 99),
      create_stages: "auth+body+template+admission+host-check->503",
    }),
  );
} catch (e) {
  failed = true;
  console.error("bench:api failed:", e);
} finally {
  if (d) await d.stop();
  rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
