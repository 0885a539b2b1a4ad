// API fuzzer: random and mutated requests against every route of a real daemon on 127.0.0.1, with the checks below.
//
// The daemon is started in this process the way the tests start it (startDaemon -> startServer: real SQLite, a temp
// data dir, the real HTTP listener), so what is fuzzed is the server the daemon runs. Requests go over raw TCP, so
// malformed Host headers, oversized heads and broken bodies reach the server as sent. Checks, each by name:
//   no-response      every request gets an HTTP response (the server did not crash or hang on it)
//   server-error     no 5xx except the documented ones (ALLOWED_5XX)
//   error-not-json   every 4xx/5xx body is JSON {code, message} (E2B shape), except PARSER_ANSWERS
//   secure-port-without-token  a data-plane request to a secure sandbox's port without its token is refused
//                    (401) before any resume or forward slot (issue 11 item 5), unless exempt
//   health           /health answers 200 afterwards
//   fd-leak, rss-growth  open fds and RSS back near the baseline afterwards (FD_SLACK, RSS_SLACK_MIB)
// Usage: bun run fuzz:api [--count N] [--seed N] [--concurrency N] [-v]. Prints coverage, then one JSON line.
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import { Admission } from "../src/scheduler/admission.ts";
import { createApi } from "../src/api/app.ts";
import { startTestDaemon, type TestDaemon } from "../src/api/test-support.ts";

/** 5xx answers the daemon documents (docs/api.md), each as E2B JSON: unsupported E2B routes (501), the data
 *  plane's "sandbox not found / port not open" (502, E2B's own edge answers), and 503 for anything the host
 *  cannot do now (OneboxError "unavailable": no VM can start on this host, a resume or pause that failed, a
 *  row whose VM process is gone, the connection limits), whose message names the cause. 500 is never right. */
const ALLOWED_5XX: Record<number, RegExp> = {
  501: /not supported|not served/,
  502: /The sandbox (was not found|is running but port is not open)/,
  503: /\w/,
};

/** Answers that are not JSON (or no answer at all), and why they are accepted: Bun's HTTP parser gives them
 *  itself, before any daemon code runs, with an empty body (checked against a bare Bun.serve). */
const PARSER_ANSWERS: { name: string; match: (s: Sent, r: Received | null) => boolean }[] = [
  // A head beyond 4x --max-header-bytes (server.ts PARSER_HEADROOM); up to there the daemon answers a JSON 431.
  { name: "bun-parser-431 (head > 4x max)", match: (s, r) => r?.status === 431 && s.headBytes > 4 * MAX_HEADER_BYTES },
  // HTTP/1.1 without Host: empty 400.
  { name: "bun-parser-400 (no Host)", match: (s, r) => r?.status === 400 && !s.hasHost },
  // A method the parser does not know (FOO): the connection is closed without an answer.
  { name: "bun-parser-drop (unknown method)", match: (s, r) => r === null && !KNOWN_METHODS.has(s.method) },
  // Request lines and framing it cannot parse: empty 400 or 505, or a closed connection.
  { name: "bun-parser-garbage", match: (s, r) => s.kind === "garbage" && (r === null || r.status === 400 || r.status === 505) },
];
const KNOWN_METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"]);

/** Open bugs another change is fixing: counted and printed under their name, not failed on. Empty means
 *  every finding fails the run. */
const KNOWN_OPEN: { name: string; match: (s: Sent, r: Received) => boolean }[] = [];

const FD_SLACK = 8;
const RSS_SLACK_MIB = 96; // the fuzzer and the daemon share this process: JIT, SQLite cache, GC timing
const MAX_HEADER_BYTES = 16384; // the config default, set explicitly below
const REQUEST_TIMEOUT_MS = 15_000;

interface Sent {
  route: string; // "METHOD /path/pattern" or a synthetic class
  kind: "control" | "data" | "garbage";
  method: string;
  hasHost: boolean;
  headBytes: number;
  /** Routed to a sandbox's port (header pair or Host label under the sandbox domain). */
  data?: { id: string; port: number | null; token: "valid" | "wrong" | "none"; path: string };
  bytes: Buffer;
}
interface Received {
  status: number;
  headers: Map<string, string>;
  body: string;
}

// ---- deterministic PRNG (mulberry32) ----
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}
type Rng = ReturnType<typeof prng>;

function parseArgs(argv: string[]) {
  const o = { count: 2000, seed: 1, concurrency: 8, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--count") o.count = Number(argv[++i]);
    else if (a === "--seed") o.seed = Number(argv[++i]);
    else if (a === "--concurrency") o.concurrency = Number(argv[++i]);
    else if (a === "-v" || a === "--verbose") o.verbose = true;
    else {
      console.log("usage: bun run fuzz:api [--count N] [--seed N] [--concurrency N] [-v]");
      process.exit(a === "--help" || a === "-h" ? 0 : 2);
    }
  }
  return o;
}

// ---- inputs ----
const WEIRD_STRINGS = [
  "", " ", "..", "../../etc/passwd", "%2e%2e%2f", "%00", "%ff%fe", "a%", "%zz", "\u00e9", "\u{1f600}", "null",
  "undefined", "__proto__", "constructor", "0", "-1", "1e309", "NaN", "'; DROP TABLE sandboxes; --", "<script>",
  "a".repeat(300), "x".repeat(5000), "tpl-fuzz", "base", "metrics", "tags",
];
function weird(r: Rng): string {
  return r.pick(WEIRD_STRINGS);
}
function randomJsonValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 3 ? 6 : 9)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick([0, -1, 1, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), 1.5, 1e308, 86_400, 86_401]);
    case 3: return weird(r);
    case 4: return r.int(100000);
    case 5: return "";
    case 6: return Array.from({ length: r.int(4) }, () => randomJsonValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(4); i > 0; i--) o[r.pick(["a", "timeout", "templateID", "metadata", "__proto__", "constructor", weird(r)])] = randomJsonValue(r, depth + 1);
      return o;
    }
  }
}

/** A body that is valid for the route, as the SDKs send it; mutations start from here. */
function goodBody(path: string): Record<string, unknown> {
  if (/sandboxes$/.test(path)) return { templateID: "base", timeout: 60, metadata: { k: "v" }, envVars: { A: "1" }, secure: true };
  if (path.endsWith("/connect") || path.endsWith("/timeout")) return { timeout: 30 };
  if (path.endsWith("/refreshes")) return { duration: 30 };
  if (path.endsWith("/pause")) return { memory: true };
  if (path.endsWith("/resume")) return { timeout: 30, autoPause: false };
  if (path.includes("/templates")) return { public: true };
  return {};
}

function mutateBody(r: Rng, body: Record<string, unknown>): string {
  if (r.chance(0.02)) return "x".repeat(1_100_000); // over --max-body-bytes: JSON 413
  switch (r.int(12)) {
    case 0: return JSON.stringify(body); // as is
    case 1: return JSON.stringify(body).slice(0, r.int(JSON.stringify(body).length)); // truncated
    case 2: return ""; // empty
    case 3: return "[".repeat(20000) + "]".repeat(20000); // deep nesting
    case 4: return JSON.stringify({ ...body, ...{ [r.pick(Object.keys(body).concat("x"))]: randomJsonValue(r) } });
    case 5: return JSON.stringify(randomJsonValue(r));
    case 6: return Buffer.from(Array.from({ length: r.int(200) }, () => r.int(256))).toString("latin1");
    case 7: return JSON.stringify({ ...body, metadata: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, "v".repeat(100)])) });
    case 8: return JSON.stringify(body).replace(/}$/, ',"__proto__":{"polluted":1}}');
    case 9: return JSON.stringify(body).replace(/"/g, "'"); // JSON-ish
    case 10: return JSON.stringify({ ...body, timeout: r.pick(["60", -5, 1e12, null, {}, 1.5]) });
    default: return JSON.stringify(body) + "garbage";
  }
}

interface RouteDef {
  method: string;
  path: string;
}

function fillPath(r: Rng, path: string, ids: { sandboxes: string[]; templates: string[] }): string {
  return path.replace(/:(\w+)/g, (_m, name: string) => {
    if (r.chance(0.3)) return encodeURIComponentLoose(weird(r));
    if (name === "id" && (path.startsWith("/templates") || path.startsWith("/v2/templates"))) return r.pick(ids.templates);
    if (name === "name") return r.pick(["base", "nope", "code-interpreter-v1"]);
    return r.pick(ids.sandboxes);
  });
}

/** Path characters as a client might send them, not always valid. */
function encodeURIComponentLoose(s: string): string {
  return s.replace(/[ \r\n#?]/g, (c) => encodeURIComponent(c));
}

function query(r: Rng): string {
  if (r.chance(0.6)) return "";
  const keys = ["limit", "nextToken", "state", "metadata", "start", "end", "cursor", "level", "search", "direction", "signature", "x"];
  const parts: string[] = [];
  for (let i = 1 + r.int(3); i > 0; i--) {
    const v = r.pick([String(r.int(200)), "-1", "0", "1e9", "abc", "running,paused", "bogus", "k%3Dv", "%zz", "", "x".repeat(3000)]);
    parts.push(`${r.pick(keys)}=${v}`);
  }
  return "?" + parts.join("&");
}

// ---- building requests ----
function head(method: string, target: string, headers: [string, string][]): string {
  return `${method} ${target} HTTP/1.1\r\n` + headers.map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
}

function build(r: Rng, routes: RouteDef[], ctx: { port: number; key: string; ids: { sandboxes: string[]; templates: string[] }; tokens: Map<string, string> }): Sent {
  const hostOk = `127.0.0.1:${ctx.port}`;
  const headers: [string, string][] = [];
  const roll = r.next();
  let kind: Sent["kind"] = "control";
  let routeName: string;
  let method: string;
  let target: string;
  let body = "";
  let data: Sent["data"];

  if (roll < 0.04) {
    // Garbage on the wire: request lines and framing the parser must refuse.
    const g = r.pick([
      "GET / HTTP/9.9\r\n\r\n", "\x00\x01\x02\r\n\r\n", "GET\r\n\r\n", "GET /health HTTP/1.1\nHost: x\n\n",
      `POST /v2/sandboxes HTTP/1.1\r\nHost: ${hostOk}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
      `GET /health HTTP/1.1\r\nHost: ${hostOk}\r\nContent-Length: -1\r\n\r\n`,
      `GET /health HTTP/1.1\r\nHost: ${hostOk}\r\nBad Header\r\n\r\n`,
      `GET /sandboxes/a\x00b HTTP/1.1\r\nHost: ${hostOk}\r\n\r\n`,
    ]);
    const bytes = Buffer.from(g, "latin1");
    return { route: "garbage", kind: "garbage", method: "?", hasHost: true, headBytes: bytes.length, bytes };
  }

  if (roll < 0.25) {
    // Data plane: E2b-Sandbox-Id/Port headers, a <port>-<id>.<domain> Host, or a signed /files URL.
    kind = "data";
    const secure = [...ctx.tokens.keys()];
    const id = r.chance(0.4) ? r.pick(secure) : r.chance(0.6) ? r.pick(ctx.ids.sandboxes) : weird(r).replace(/[^\x21-\x7e]/g, "x");
    const port = r.pick(["49983", "49983", "49999", "49999", "8080", "3000", "0", "65536", "abc", "1"]);
    method = r.pick(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"]);
    target = r.pick(["/health", "/files?path=/etc/passwd", "/process.Process/Start", "/execute", "/contexts", "/", "/filesystem.Filesystem/ListDir", "/" + "a".repeat(3000)]);
    const mode = r.int(4);
    if (mode === 0) {
      headers.push(["Host", hostOk]);
      if (r.chance(0.9)) headers.push(["E2b-Sandbox-Id", id]);
      if (r.chance(0.9)) headers.push(["E2b-Sandbox-Port", port]);
      routeName = "data: E2b-Sandbox-Id";
    } else if (mode === 1) {
      headers.push(["Host", `${port}-${id}.localhost:${ctx.port}`]);
      routeName = "data: Host <port>-<id>.<domain>";
    } else if (mode === 2) {
      headers.push(["Host", hostOk]);
      target = `/files?path=/x&username=user&signature=v1_${r.pick(["abc", "", "x".repeat(100)])}&signature_expiration=${r.int(2 ** 31)}`;
      routeName = "data: signed /files";
    } else {
      headers.push(["Host", `${port}-${id}.${r.pick(["evil.example", "localhost", "localhost.", "LOCALHOST"])}`]);
      routeName = "data: Host other domain";
    }
    let token: "valid" | "wrong" | "none" = "none";
    if (r.chance(0.5)) {
      const valid = r.chance(0.5) && ctx.tokens.has(id);
      token = valid ? "valid" : "wrong";
      headers.push(["X-Access-Token", valid ? ctx.tokens.get(id)! : weird(r).replace(/[^\x21-\x7e]/g, "x") || "x"]);
    }
    const routed = (mode === 0 && headers.some(([k]) => k === "E2b-Sandbox-Id") && headers.some(([k]) => k === "E2b-Sandbox-Port")) || mode === 1;
    const portNum = /^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535 ? Number(port) : null;
    if (routed) data = { id, port: portNum, token, path: target };
    if (r.chance(0.1)) headers.push(["Upgrade", "websocket"], ["Connection", "Upgrade"], ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="], ["Sec-WebSocket-Version", "13"]);
    if (method === "POST" || method === "PUT") body = mutateBody(r, { path: "/x" });
  } else {
    // Control plane: a route of the app (or a path that is none), params and bodies mutated.
    const synthetic = r.chance(0.08);
    const route: RouteDef = synthetic
      ? { method: r.pick(["GET", "POST"]), path: r.pick(["/nope", "/sandboxes/a/b/c/d", "//sandboxes", "/v9/sandboxes", "/" + "z".repeat(4000), "/sandboxes/%2e%2e/x", "/health/"]) }
      : r.pick(routes);
    routeName = synthetic ? "synthetic: unknown path" : `${route.method} ${route.path}`;
    method = r.chance(0.88) ? route.method : r.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO"]);
    target = fillPath(r, route.path, ctx.ids) + query(r);
    const hostRoll = r.int(20);
    if (hostRoll === 0) headers.push(["Host", r.pick(["bad host", "a%zz", "[::1", "host:99999", "\u00e9.example", "", "x".repeat(300), ":80", "a@b"])]);
    else if (hostRoll === 1) headers.push(["Host", hostOk], ["Host", "other"]); // duplicate
    else if (hostRoll !== 2) headers.push(["Host", hostOk]); // 2: no Host at all
    const auth = r.int(10);
    if (auth < 7) headers.push(["X-API-Key", ctx.key]);
    else if (auth === 7) headers.push(["X-API-Key", weird(r).replace(/[^\x21-\x7e]/g, "x") || "k"]);
    else if (auth === 8) headers.push(["Authorization", `Bearer ${ctx.key}`]);
    if (method === "POST" || method === "PATCH" || method === "PUT" || r.chance(0.05)) body = mutateBody(r, goodBody(route.path));
    if (r.chance(0.8)) headers.push(["Content-Type", r.pick(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16"])]);
  }

  // Headers: extra ones, and now and then a head around the 431 limit.
  for (let i = r.int(3); i > 0; i--) headers.push([`X-Fuzz-${i}`, weird(r).replace(/[^\x21-\x7e ]/g, "x")]);
  const big = r.int(40);
  if (big === 0) headers.push(["X-Big", "b".repeat(MAX_HEADER_BYTES + r.int(MAX_HEADER_BYTES))]); // our JSON 431
  else if (big === 1) headers.push(["X-Big", "b".repeat(5 * MAX_HEADER_BYTES)]); // Bun's parser's own 431
  const bodyBytes = Buffer.from(body, "latin1");
  if (body || method === "POST") headers.push(["Content-Length", String(bodyBytes.length)]);
  headers.push(["Connection", "close"]);
  const h = head(method, target, headers);
  const hb = Buffer.from(h, "utf8"); // non-ASCII goes out as UTF-8, as clients send it
  const hasHost = headers.some(([k]) => k === "Host");
  return { route: routeName, kind, method, hasHost, headBytes: hb.length, bytes: Buffer.concat([hb, bodyBytes]), data };
}

// ---- sending over raw TCP ----
function send(port: number, s: Sent): Promise<Received | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(parseResponse(Buffer.concat(chunks)));
    };
    const timer = setTimeout(finish, REQUEST_TIMEOUT_MS);
    // No half-close after the request: Bun takes a client FIN as an abort and drops a slow handler's answer
    // (a resume takes ~100 ms here), which real clients never see. Connection: close ends it instead.
    sock.on("connect", () => sock.write(s.bytes, () => s.kind === "garbage" && sock.end()));
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("end", finish);
    sock.on("close", finish);
    sock.on("error", finish);
  });
}

function parseResponse(buf: Buffer): Received | null {
  const sep = buf.indexOf("\r\n\r\n");
  if (sep < 0) return null;
  const lines = buf.subarray(0, sep).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
  if (!m) return null;
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  let body = buf.subarray(sep + 4);
  if (headers.get("transfer-encoding")?.includes("chunked")) body = dechunk(body);
  // Only this response's body: the parser may write its own answer to garbage after ours on the same socket.
  else if (headers.has("content-length")) body = body.subarray(0, Number(headers.get("content-length")));
  return { status: Number(m[1]), headers, body: body.toString("utf8") };
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let off = 0;
  while (off < b.length) {
    const nl = b.indexOf("\r\n", off);
    if (nl < 0) break;
    const n = parseInt(b.subarray(off, nl).toString("latin1"), 16);
    if (!n) break;
    out.push(b.subarray(nl + 2, nl + 2 + n));
    off = nl + 2 + n + 2;
  }
  return Buffer.concat(out);
}

// ---- the process's own resources ----
function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}
function rssMiB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    Bun.gc(true);
    await Bun.sleep(100);
  }
}

// ---- fixtures: rows the routes can find (no VM can boot on this host; creates end in a documented 503) ----
function fixtures(d: TestDaemon): { sandboxes: string[]; templates: string[]; tokens: Map<string, string> } {
  const now = Date.now();
  d.state.templates.insert({
    id: "tplfuzz", aliases: '["base"]', dir: "/nonexistent", kernel: "/nonexistent", initrd: null, cpuCount: 1, memoryMb: 256,
    diskSizeMb: 512, envdVersion: "0.6.13", public: false, cmdlineExtra: "", createdAt: now, updatedAt: now,
  });
  return { sandboxes: [], templates: ["tplfuzz", "base", "nope"], tokens: new Map() };
}

/** A fresh batch of sandbox rows (the fuzz kills and times out the old ones): running and paused, secure
 *  (with an envd token, as the manager creates them) and not. */
function sandboxBatch(d: TestDaemon, batch: number): { sandboxes: string[]; tokens: Map<string, string> } {
  const now = Date.now();
  const sandboxes: string[] = ["nosuchsandbox"];
  const tokens = new Map<string, string>();
  for (let i = 0; i < 12; i++) {
    const id = `fz${batch}x${i}box`;
    d.state.sandboxes.insert({
      id, templateId: "tplfuzz", state: i % 3 === 2 ? "paused" : "running", cpuCount: 1, memoryMb: 128, diskSizeMb: 256,
      envdVersion: "0.6.13", envdAccessToken: i % 2 === 0 ? `tok${batch}x${i}` : null, metadata: JSON.stringify({ i: String(i) }),
      envVars: "{}", secure: i % 2 === 0, startedAt: now, endAt: now + 3_600_000,
    });
    sandboxes.push(id);
    if (i % 2 === 0) tokens.set(id, `tok${batch}x${i}`);
  }
  return { sandboxes, tokens };
}

// ---- checks ----
function isJsonError(r: Received): boolean {
  if (!(r.headers.get("content-type") ?? "").includes("application/json")) return false;
  try {
    const b = JSON.parse(r.body) as { code?: unknown; message?: unknown };
    return typeof b.code === "number" && typeof b.message === "string";
  } catch {
    return false;
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const d = await startTestDaemon({ listen: "127.0.0.1", maxHeaderBytes: MAX_HEADER_BYTES, idleTimeoutSec: 5 });
  const fx = fixtures(d);
  const first = sandboxBatch(d, 0);
  const ctx = { port: d.server.port!, key: d.key, ids: { sandboxes: first.sandboxes, templates: fx.templates }, tokens: first.tokens };
  const BATCH_EVERY = 250;
  // The routes, from the app the daemon runs (same modules, same order); middleware entries dropped.
  const api = createApi({ config: d.config, state: d.state, manager: d.manager, admission: new Admission(d.config, () => d.state.sandboxes.claims()) });
  const seen = new Set<string>();
  const routes: RouteDef[] = [];
  for (const rt of api.routes) {
    const key = `${rt.method} ${rt.path}`;
    if (rt.method === "ALL" || seen.has(key)) continue;
    seen.add(key);
    routes.push({ method: rt.method, path: rt.path });
  }

  const rng = prng(opts.seed);
  // Baseline after a warm-up of one request per route (JIT, SQLite statements, Bun's pools).
  for (const rt of routes) await send(ctx.port, build(prng(1), [rt], ctx));
  await settle();
  const fd0 = fdCount();
  const rss0 = rssMiB();

  const perRoute = new Map<string, number>();
  const statuses = new Map<number, number>();
  const failures = new Map<string, { count: number; example: string }>();
  const known = new Map<string, number>();
  const fail = (name: string, s: Sent, detail: string) => {
    for (const k of KNOWN_OPEN) {
      if (k.name === name) {
        known.set(name, (known.get(name) ?? 0) + 1);
        return;
      }
    }
    const f = failures.get(name) ?? { count: 0, example: "" };
    f.count++;
    if (!f.example) f.example = `${detail} :: ${s.route} :: ${JSON.stringify(s.bytes.subarray(0, 400).toString("latin1"))}`;
    failures.set(name, f);
  };

  // Built one at a time in order (deterministic from the seed whatever the concurrency), not all up front:
  // the baseline and the end measurement see only the daemon's memory, not the fuzzer's backlog.
  let sent = 0;
  let tokenlessChecked = 0;
  const worker = async () => {
    while (sent < opts.count) {
      if (++sent % BATCH_EVERY === 0) {
        const b = sandboxBatch(d, sent / BATCH_EVERY);
        ctx.ids.sandboxes = b.sandboxes;
        ctx.tokens = b.tokens;
      }
      const s = build(rng, routes, ctx);
      perRoute.set(s.route, (perRoute.get(s.route) ?? 0) + 1);
      const started = performance.now();
      const r = await send(ctx.port, s);
      const ms = Math.round(performance.now() - started);
      statuses.set(r?.status ?? 0, (statuses.get(r?.status ?? 0) ?? 0) + 1);
      const parser = PARSER_ANSWERS.find((k) => k.match(s, r));
      if (parser) {
        known.set(parser.name, (known.get(parser.name) ?? 0) + 1);
        continue;
      }
      if (!r) {
        fail("no-response", s, `no HTTP response after ${ms} ms`);
        if (opts.verbose) console.log(`no response after ${ms} ms: ${JSON.stringify(s.bytes.subarray(0, 300).toString("latin1"))}`);
        continue;
      }
      if (r.status >= 500) {
        const allowed = ALLOWED_5XX[r.status];
        if (!allowed || (s.method !== "HEAD" && !allowed.test(r.body))) fail("server-error", s, `${r.status} ${r.body.slice(0, 200)}`);
      }
      // Exempt as access.ts documents: preflights and the SDKs' tokenless health/contexts calls.
      const dp = s.data;
      if (dp && dp.port !== null && dp.token !== "valid" && ctx.tokens.has(dp.id) && s.method !== "OPTIONS" &&
          !/^\/(health|contexts)/.test(dp.path) && !dp.path.startsWith("/files")) {
        const row = d.state.sandboxes.get(dp.id);
        if (row && (row.state === "running" || row.state === "paused")) tokenlessChecked++;
        // Refused (401, or earlier: 400/431) is right; routed on (a forward or resume: 2xx, 502, 503) is not.
        if (row && (row.state === "running" || row.state === "paused") && (r.status < 400 || r.status >= 500)) {
          fail("secure-port-without-token", s, `${r.status} ${r.body.slice(0, 200)} (sandbox ${row.state})`);
        }
      }
      if (r.status >= 400 && s.method !== "HEAD" && !isJsonError(r)) {
        fail("error-not-json", s, `${r.status} content-type=${r.headers.get("content-type")} body=${JSON.stringify(r.body.slice(0, 200))}`);
      }
      if (opts.verbose) console.log(r.status, s.route);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));

  const health = await fetch(`${d.url}/health`).then((r) => r.status, () => 0);
  if (health !== 200) failures.set("health", { count: 1, example: `GET /health -> ${health}` });
  await settle();
  const fd1 = fdCount();
  const rss1 = rssMiB();
  if (fd1 > fd0 + FD_SLACK) failures.set("fd-leak", { count: 1, example: `open fds ${fd0} -> ${fd1} (slack ${FD_SLACK})` });
  if (rss1 > rss0 + RSS_SLACK_MIB) failures.set("rss-growth", { count: 1, example: `RSS ${rss0} -> ${rss1} MiB (slack ${RSS_SLACK_MIB})` });
  await d.stop();

  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  console.log(`fuzz-api: seed ${opts.seed}, ${opts.count} requests, ${routes.length} routes, concurrency ${opts.concurrency}, ${seconds} s`);
  console.log("fuzz-api: requests per route:");
  for (const [k, v] of [...perRoute].sort()) console.log(`  ${String(v).padStart(5)}  ${k}`);
  const untouched = routes.map((r) => `${r.method} ${r.path}`).filter((k) => !perRoute.has(k));
  if (untouched.length) console.log(`fuzz-api: routes not hit this run: ${untouched.join(", ")}`);
  console.log(`fuzz-api: statuses: ${[...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(" ")}`);
  console.log(`fuzz-api: accepted (documented): ${[...known].map(([k, n]) => `${k}:${n}`).join(" ") || "none"}`);
  console.log(`fuzz-api: tokenless requests to secure sandboxes' ports checked: ${tokenlessChecked}`);
  console.log(`fuzz-api: fds ${fd0} -> ${fd1}, RSS ${rss0} -> ${rss1} MiB`);
  for (const [name, f] of failures) console.log(`fuzz-api: FAIL ${name} (${f.count}): ${f.example}`);
  const ok = failures.size === 0;
  console.log(JSON.stringify({
    fuzz: "api", ok, seed: opts.seed, requests: opts.count, routes: routes.length, routesHit: routes.length - untouched.length, seconds,
    statuses: Object.fromEntries(statuses), failures: Object.fromEntries([...failures].map(([k, f]) => [k, f.count])),
    accepted: Object.fromEntries(known), tokenlessChecked, fds: [fd0, fd1], rssMiB: [rss0, rss1],
  }));
  process.exit(ok ? 0 : 1);
}

await main();
