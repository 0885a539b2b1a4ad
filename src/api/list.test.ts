// Tests GET /v2/sandboxes and GET /sandboxes: filters and cursor paging over rows inserted through the store.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { NewSandboxRow } from "../store/index.ts";
import { startTestDaemon, type TestDaemon } from "./test-support.ts";

let d: TestDaemon;
const T0 = Date.parse("2026-01-01T00:00:00Z");

function row(i: number, patch: Partial<NewSandboxRow> = {}): NewSandboxRow {
  return {
    id: `sb${String(i).padStart(3, "0")}`,
    templateId: i % 2 ? "tplodd" : "tpleven",
    state: "running",
    cpuCount: 1,
    memoryMb: 256,
    diskSizeMb: 512,
    envdVersion: "0.6.13",
    envdAccessToken: "tok",
    metadata: JSON.stringify({ idx: String(i), group: i < 10 ? "a" : "b", "key with space": "v&=x" }),
    envVars: "{}",
    secure: true,
    startedAt: T0 + i * 1000,
    endAt: T0 + 10_000_000,
    ...patch,
  };
}

beforeAll(async () => {
  d = await startTestDaemon();
  const now = Date.now();
  d.state.templates.insert({
    id: "tplodd", aliases: '["odd"]', dir: "/x", kernel: "/x", initrd: null, cpuCount: 1, memoryMb: 256,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", createdAt: now, updatedAt: now,
  });
  for (let i = 0; i < 25; i++) d.state.sandboxes.insert(row(i));
  d.state.sandboxes.insert(row(100, { state: "paused" }));
  d.state.sandboxes.insert(row(101, { state: "ended", endedAt: now, endReason: "killed" }));
});
afterAll(() => d.stop());

type Listed = { sandboxID: string; state: string; metadata: Record<string, string>; templateID: string; clientID: string; startedAt: string };
async function list(q: string): Promise<{ items: Listed[]; next: string | null }> {
  const res = await d.api("/v2/sandboxes" + q);
  expect(res.status).toBe(200);
  return { items: (await res.json()) as Listed[], next: res.headers.get("x-next-token") };
}

test("default: running and paused, newest first, ended hidden, E2B fields", async () => {
  const { items, next } = await list("");
  expect(items.length).toBe(26);
  expect(next).toBeNull();
  expect(items[0]!.sandboxID).toBe("sb100");
  expect(items.map((x) => x.sandboxID)).not.toContain("sb101");
  expect(items[0]!.clientID).toBe("6532622b");
  expect(items.find((x) => x.sandboxID === "sb100")!.state).toBe("paused");
  expect(new Date(items[1]!.startedAt).getTime()).toBe(T0 + 24_000);
});

test("state filter", async () => {
  expect((await list("?state=paused")).items.map((x) => x.sandboxID)).toEqual(["sb100"]);
  expect((await list("?state=running")).items.length).toBe(25);
  expect((await list("?state=running,paused")).items.length).toBe(26);
});

test("metadata filter with the SDK's double encoding (spec §1.3)", async () => {
  // What the SDK (2.51 dist) does: encodeURIComponent each key and value, URLSearchParams(...).toString(),
  // and the query serializer encodes that once more as the one `metadata` parameter.
  const enc = (m: Record<string, string>) =>
    new URLSearchParams(Object.fromEntries(Object.entries(m).map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)]))).toString();
  const q = (m: Record<string, string>) => "?metadata=" + encodeURIComponent(enc(m));
  expect((await list(q({ idx: "7" }))).items.map((x) => x.sandboxID)).toEqual(["sb007"]);
  expect((await list(q({ group: "a" }))).items.length).toBe(10);
  expect((await list(q({ group: "a", idx: "12" }))).items.length).toBe(0);
  expect((await list(q({ "key with space": "v&=x", idx: "3" }))).items.map((x) => x.sandboxID)).toEqual(["sb003"]);
});

test("paging with limit and nextToken visits every row once, both orders", async () => {
  for (const order of ["desc", "asc"] as const) {
    const seen: string[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const { items, next }: { items: Listed[]; next: string | null } = await list(
        `?state=running&limit=7&order=${order}` + (token ? `&nextToken=${encodeURIComponent(token)}` : ""),
      );
      seen.push(...items.map((x) => x.sandboxID));
      token = next;
      pages++;
    } while (token && pages < 10);
    expect(pages).toBe(4);
    expect(new Set(seen).size).toBe(25);
    const sorted = [...seen].sort();
    expect(seen).toEqual(order === "asc" ? sorted : sorted.reverse());
  }
});

test("startedAfter and template (id or alias)", async () => {
  const after = new Date(T0 + 20_500).toISOString();
  expect((await list(`?state=running&startedAfter=${after}`)).items.map((x) => x.sandboxID)).toEqual(["sb024", "sb023", "sb022", "sb021"]);
  // E2B's bound is inclusive: a sandbox's own startedAt (as listed) keeps it in the answer
  const own = new Date(T0 + 22_000).toISOString();
  expect((await list(`?state=running&startedAfter=${own}`)).items.map((x) => x.sandboxID)).toEqual(["sb024", "sb023", "sb022"]);
  const byAlias = (await list("?state=running&template=odd")).items;
  expect(byAlias.length).toBe(12);
  expect(byAlias.every((x) => x.templateID === "tplodd")).toBe(true);
  expect((await list("?template=tpleven")).items.length).toBe(14);
});

test("v1 GET /sandboxes lists running only, with the metadata filter", async () => {
  const res = await d.api("/sandboxes");
  const items = (await res.json()) as Listed[];
  expect(items.length).toBe(25);
  const f = await d.api("/sandboxes?metadata=" + encodeURIComponent("idx=4"));
  expect(((await f.json()) as Listed[]).map((x) => x.sandboxID)).toEqual(["sb004"]);
});

test("GET /sandboxes/{id}: detail for live rows, 404 for ended ones", async () => {
  const res = await d.api("/sandboxes/sb005");
  expect(res.status).toBe(200);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body.sandboxID).toBe("sb005");
  expect(body.state).toBe("running");
  expect(body.memoryMB).toBe(256);
  expect(body.envdAccessToken).toBe("tok");
  expect((await d.api("/sandboxes/sb101")).status).toBe(404);
});

test("a token past the end gives an empty page and no X-Next-Token", async () => {
  // The last row in desc order is sb000; a cursor on it, or older than any row, has nothing after it.
  const past = Buffer.from(JSON.stringify([T0, "sb000"])).toString("base64url");
  expect(await list(`?state=running&nextToken=${past}`)).toEqual({ items: [], next: null });
  const older = Buffer.from(JSON.stringify([T0 - 1, "zzz"])).toString("base64url");
  expect(await list(`?nextToken=${older}`)).toEqual({ items: [], next: null });
  // An exact last page (limit = what is left) ends without a token, too.
  const { items, next } = await list(`?state=running&limit=5&nextToken=${Buffer.from(JSON.stringify([T0 + 5000, "sb005"])).toString("base64url")}`);
  expect(items.map((x) => x.sandboxID)).toEqual(["sb004", "sb003", "sb002", "sb001", "sb000"]);
  expect(next).toBeNull();
});

test("a malformed nextToken, limit or state is a 400 in the E2B shape", async () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64url");
  for (const q of [
    "nextToken=garbage!",
    `nextToken=${b64("[1,2]")}`,
    `nextToken=${b64('["x","sb001"]')}`,
    `nextToken=${b64("[1.5,\"sb001\"]")}`,
    `nextToken=${b64('{"a":1}')}`,
    "limit=0",
    "limit=101",
    "limit=ten",
    "state=stopped",
    "order=sideways",
    "startedAfter=yesterday",
    "metadata=" + encodeURIComponent(Array.from({ length: 65 }, (_, i) => `k${i}=v`).join("&")),
    "metadata=" + encodeURIComponent("novalue"),
  ]) {
    const res = await d.api("/v2/sandboxes?" + q);
    expect({ q, status: res.status }).toEqual({ q, status: 400 });
    const body = (await res.json()) as { code: number; message: string };
    expect(body.code).toBe(400);
    expect(body.message.length).toBeGreaterThan(10);
  }
});

test("metadata filter with several keys: all must match", async () => {
  // As the SDK encodes it (see the double-encoding test above).
  const q = (pairs: [string, string][]) =>
    "?metadata=" + encodeURIComponent(new URLSearchParams(pairs.map(([k, v]): [string, string] => [encodeURIComponent(k), encodeURIComponent(v)])).toString());
  expect((await list(q([["group", "b"], ["idx", "15"], ["key with space", "v&=x"]]))).items.map((x) => x.sandboxID)).toEqual(["sb015"]);
  expect((await list(q([["group", "b"], ["idx", "15"], ["key with space", "other"]]))).items).toEqual([]);
  const b = await list(q([["group", "b"], ["key with space", "v&=x"]]) + "&state=running&limit=4");
  expect(b.items.map((x) => x.sandboxID)).toEqual(["sb024", "sb023", "sb022", "sb021"]);
  expect(b.next).not.toBeNull();
  // The filter holds across pages.
  const rest = await list(q([["group", "b"], ["key with space", "v&=x"]]) + `&state=running&limit=100&nextToken=${b.next}`);
  expect(rest.items.map((x) => x.sandboxID)).toEqual(["sb020", "sb019", "sb018", "sb017", "sb016", "sb015", "sb014", "sb013", "sb012", "sb011", "sb010"]);
  expect(rest.next).toBeNull();
});

test("paging while sandboxes are added and removed: survivors seen once, none skipped", async () => {
  // Own rows (metadata walk=1) so the other tests' rows do not matter.
  const W = T0 + 1_000_000;
  const mk = (i: number, startedAt: number): NewSandboxRow => ({
    ...row(200 + i),
    id: `walk${String(i).padStart(2, "0")}`,
    metadata: JSON.stringify({ walk: "1" }),
    startedAt,
  });
  for (let i = 0; i < 20; i++) d.state.sandboxes.insert(mk(i, W + i * 1000));
  const q = "?metadata=" + encodeURIComponent("walk=1") + "&limit=6";
  const seen: string[] = [];
  let page = await list(q);
  seen.push(...page.items.map((x) => x.sandboxID));
  // Between pages: a newer sandbox starts (lands before the cursor: not part of this walk), an
  // unseen one ends, an already seen one ends, and one starts with the same startedAt as an unseen row.
  d.state.sandboxes.insert(mk(50, W + 100_000));
  d.state.sandboxes.update("walk05", { state: "ended", endedAt: Date.now() });
  d.state.sandboxes.update("walk18", { state: "ended", endedAt: Date.now() });
  d.state.sandboxes.insert(mk(51, W + 3000));
  let pages = 1;
  while (page.next && pages < 10) {
    page = await list(q + `&nextToken=${page.next}`);
    seen.push(...page.items.map((x) => x.sandboxID));
    pages++;
  }
  const expected = ["walk19", "walk18", "walk17", "walk16", "walk15", "walk14"] // first page, before the changes
    .concat(["walk13", "walk12", "walk11", "walk10", "walk09", "walk08", "walk07", "walk06", "walk04", "walk51", "walk03", "walk02", "walk01", "walk00"]);
  expect(seen).toEqual(expected);
  expect(new Set(seen).size).toBe(seen.length);
  expect(pages).toBe(4);
  // A fresh walk reflects the new state.
  const fresh = await list(q.replace("limit=6", "limit=100"));
  expect(fresh.items.map((x) => x.sandboxID)).toContain("walk50");
  expect(fresh.items.map((x) => x.sandboxID)).not.toContain("walk05");
});
