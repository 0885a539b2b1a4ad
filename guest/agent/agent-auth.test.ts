// Access token, signed URLs, big streamed transfers and malformed Connect input against a running agent (e2b-protocol.md §3.1, §3.5).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { createReadStream, readdirSync, statSync } from "node:fs";
import { AuthenticationError, Sandbox } from "e2b";
import { encodeEnvelope } from "./connect.ts";
import { ensureTestUser, startTestAgent, type RunningAgent } from "./test-harness.ts";

const TOKEN = "tok-" + crypto.randomUUID();
const UNAUTHORIZED = { code: 401, message: "unauthorized access, please provide a valid access token or method signing if supported" };
let agent: RunningAgent;
let sbx: Sandbox;

beforeAll(async () => {
  ensureTestUser();
  agent = await startTestAgent();
  expect((await agent.init({ accessToken: TOKEN, defaultUser: "user", envVars: { FROM_INIT: "1" } })).status).toBe(204);
  sbx = agent.sandbox({ token: TOKEN });
});
afterAll(async () => agent.stop());

test("token: RPC and /envs need X-Access-Token; exact 401 body; /health is open", async () => {
  expect((await fetch(`${agent.url}/health`)).status).toBe(204);
  const r = await fetch(`${agent.url}/envs`);
  expect(r.status).toBe(401);
  expect(await r.json()).toEqual(UNAUTHORIZED);
  const ok = await fetch(`${agent.url}/envs`, { headers: { "X-Access-Token": TOKEN } });
  expect(await ok.json()).toEqual({ FROM_INIT: "1" });
  const rpc = await fetch(`${agent.url}/process.Process/List`, { method: "POST", headers: { "content-type": "application/json", "X-Access-Token": "wrong" }, body: "{}" });
  expect(rpc.status).toBe(401);
  expect(await rpc.json()).toEqual(UNAUTHORIZED);
  const noToken = agent.sandbox();
  expect(await noToken.commands.run("true").catch((x) => x)).toBeInstanceOf(AuthenticationError);
  expect((await sbx.commands.run("echo $FROM_INIT")).stdout).toBe("1\n");
  const m = (await (await fetch(`${agent.url}/metrics`, { headers: { "X-Access-Token": TOKEN } })).json()) as any;
  expect(m.cpu_count).toBeGreaterThan(0);
  expect(m.mem_total).toBeGreaterThan(m.mem_used);
  expect(m.disk_total).toBeGreaterThan(0);
});

test("signed URLs: download and upload; bad, missing and expired signatures are 401", async () => {
  const path = `${agent.dir}/signed.txt`;
  const up = await sbx.uploadUrl(path, { useSignatureExpiration: 60_000 });
  const form = new FormData();
  form.append("file", new Blob(["signed body"]), path);
  const w = await fetch(up, { method: "POST", body: form });
  expect(w.status).toBe(200);
  expect(await w.json()).toEqual([{ path, name: "signed.txt", type: "file" }]);
  const down = await sbx.downloadUrl(path);
  expect(await (await fetch(down)).text()).toBe("signed body");
  const bad = new URL(down);
  bad.searchParams.set("signature", "v1_bogus");
  const b = await fetch(bad);
  expect(b.status).toBe(401);
  expect(((await b.json()) as any).message).toBe("invalid signature");
  bad.searchParams.delete("signature");
  expect(((await (await fetch(bad)).json()) as any).message).toBe("missing signature query parameter");
  const expired = new URL(await sbx.downloadUrl(path, { useSignatureExpiration: 1 }));
  const exp = Number(expired.searchParams.get("signature_expiration"));
  // re-sign with an expiration in the past: the agent must reject it as expired
  const past = exp - 3600;
  const sig = "v1_" + createHash("sha256").update(`${path}:read::${TOKEN}:${past}`).digest("base64").replace(/=+$/, "");
  expired.searchParams.set("signature", sig);
  expired.searchParams.set("signature_expiration", String(past));
  const e = await fetch(expired);
  expect(e.status).toBe(401);
  expect(((await e.json()) as any).message).toBe("signature is already expired");
  // a write signature does not grant reads
  expect((await fetch(up.replace("/files?", "/files?x=1&"))).status).toBe(401);
});

test("100 MiB upload and download are byte-identical (streamed)", async () => {
  const src = `${agent.dir}/big.src`;
  const dst = `${agent.dir}/big.dst`;
  // deterministic, non-repeating content
  const chunk = new Uint8Array(1024 * 1024);
  const hashIn = createHash("sha256");
  const writer = Bun.file(src).writer();
  for (let i = 0; i < 100; i++) {
    crypto.getRandomValues(chunk.subarray(0, 65536));
    chunk.copyWithin(65536, 0, chunk.byteLength - 65536);
    writer.write(chunk);
    hashIn.update(chunk);
  }
  await writer.end();
  const digest = hashIn.digest("hex");
  const upUrl = await sbx.uploadUrl(dst);
  const up = await fetch(upUrl, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: Bun.file(src).stream(),
  });
  expect(up.status).toBe(200);
  expect(statSync(dst).size).toBe(100 * 1024 * 1024);
  const hashFile = createHash("sha256");
  for await (const c of createReadStream(dst)) hashFile.update(c as Buffer);
  expect(hashFile.digest("hex")).toBe(digest);
  // the SDK's streaming write (octet-stream) and streaming read of the same 100 MiB
  const dst2 = `${agent.dir}/big.sdk`;
  await sbx.files.write(dst2, Bun.file(src).stream());
  const hashSdk = createHash("sha256");
  for await (const c of (await sbx.files.read(dst2, { format: "stream" })) as unknown as AsyncIterable<Uint8Array>) hashSdk.update(c);
  expect(hashSdk.digest("hex")).toBe(digest);
  const down = await fetch(await sbx.downloadUrl(dst), { headers: { "accept-encoding": "identity" } });
  expect(down.headers.get("content-length")).toBe(String(100 * 1024 * 1024));
  const hashOut = createHash("sha256");
  for await (const c of down.body as unknown as AsyncIterable<Uint8Array>) hashOut.update(c);
  expect(hashOut.digest("hex")).toBe(digest);
  // the agent did not hold the file in memory
  const rss = Number(/VmHWM:\s+(\d+)/.exec(await Bun.file(`/proc/${agent.proc.pid}/status`).text())?.[1]) * 1024;
  expect(rss).toBeLessThan(90 * 1024 * 1024);
}, 30_000);

async function connectCall(method: string, body: string | Uint8Array, ct = "application/connect+json"): Promise<Response> {
  return fetch(`${agent.url}/${method}`, { method: "POST", headers: { "content-type": ct, "X-Access-Token": TOKEN }, body });
}

function frames(buf: Uint8Array): { flags: number; msg: any }[] {
  const out = [];
  let off = 0;
  while (off + 5 <= buf.byteLength) {
    const len = new DataView(buf.buffer, buf.byteOffset + off + 1, 4).getUint32(0);
    out.push({ flags: buf[off]!, msg: JSON.parse(new TextDecoder().decode(buf.subarray(off + 5, off + 5 + len))) });
    off += 5 + len;
  }
  return out;
}

test("bad Connect input gives proper errors and the agent stays up", async () => {
  // truncated envelope on a stream: 200 with an end-stream error
  const t = await connectCall("process.Process/Start", new Uint8Array([0, 0, 0, 0, 50, 123]));
  expect(t.status).toBe(200);
  const f = frames(new Uint8Array(await t.arrayBuffer()));
  expect(f).toEqual([{ flags: 2, msg: { error: { code: "invalid_argument", message: expect.any(String) }, metadata: {} } }]);
  // compressed flag
  const c = frames(new Uint8Array(await (await connectCall("process.Process/Start", new Uint8Array([1, 0, 0, 0, 2, 123, 125]))).arrayBuffer()));
  expect(c[0]!.msg.error.code).toBe("invalid_argument");
  // huge declared length
  const h = frames(new Uint8Array(await (await connectCall("filesystem.Filesystem/WatchDir", new Uint8Array([0, 255, 255, 255, 255]))).arrayBuffer()));
  expect(h[0]!.msg.error.code).toBe("invalid_argument");
  // wrong types in a valid envelope
  const w = frames(new Uint8Array(await (await connectCall("process.Process/Start", encodeEnvelope(0, { process: { cmd: 5 } }))).arrayBuffer()));
  expect(w[0]!.msg.error.code).toBe("invalid_argument");
  // unary: invalid JSON, array body, wrong field types, unknown method
  for (const [m, body] of [["filesystem.Filesystem/Stat", "{not json"], ["filesystem.Filesystem/Stat", "[]"], ["process.Process/SendSignal", '{"process":{"pid":-1},"signal":"SIGNAL_SIGKILL"}'], ["filesystem.Filesystem/ListDir", '{"path":"/","depth":"x"}']] as const) {
    const r = await connectCall(m, body, "application/json");
    expect(r.status).toBe(400);
    expect(((await r.json()) as any).code).toBe("invalid_argument");
  }
  const big = await connectCall("filesystem.Filesystem/Stat", JSON.stringify({ path: "x".repeat(5 * 1024 * 1024) }), "application/json");
  expect(((await big.json()) as any).code).toBe("invalid_argument");
  const un = await connectCall("filesystem.Filesystem/Nope", "{}", "application/json");
  expect(((await un.json()) as any).code).toBe("unimplemented");
  const sig = await connectCall("process.Process/SendSignal", '{"process":{"pid":1},"signal":"SIGNAL_BOGUS"}', "application/json");
  expect(((await sig.json()) as any).code).toBe("invalid_argument");
  expect((await fetch(`${agent.url}/health`)).status).toBe(204);
});

test("raw Start with tag: start first, keepalive, base64 data, one end, end-stream; Connect by tag", async () => {
  const body = encodeEnvelope(0, { process: { cmd: "/bin/sh", args: ["-c", "printf ab; sleep 1.2; printf cd"] }, tag: "tagged", stdin: false });
  const res = await fetch(`${agent.url}/process.Process/Start`, {
    method: "POST",
    headers: { "content-type": "application/connect+json", "X-Access-Token": TOKEN, "Keepalive-Ping-Interval": "1", Authorization: "Basic " + btoa("root:") },
    body,
  });
  const listed = (await (await connectCall("process.Process/List", "{}", "application/json")).json()) as any;
  expect(listed.processes.some((p: any) => p.tag === "tagged")).toBe(true);
  const c = await connectCall("process.Process/Connect", encodeEnvelope(0, { process: { tag: "tagged" } }));
  const f = frames(new Uint8Array(await res.arrayBuffer()));
  expect(f[0]!.msg.event.start.pid).toBeGreaterThan(0);
  const data = f.filter((x) => x.msg.event?.data).map((x) => atob(x.msg.event.data.stdout)).join("");
  expect(data).toBe("abcd");
  expect(f.some((x) => x.msg.event?.keepalive)).toBe(true);
  expect(f.filter((x) => x.msg.event?.end)).toEqual([{ flags: 0, msg: { event: { end: { exitCode: 0, exited: true, status: "exit status 0" } } } }]);
  expect(f.at(-1)).toEqual({ flags: 2, msg: {} });
  const cf = frames(new Uint8Array(await c.arrayBuffer()));
  expect(cf[0]!.msg.event.start.pid).toBe(f[0]!.msg.event.start.pid);
  expect(cf.at(-2)!.msg.event.end.exitCode).toBe(0);
});

test("StreamInput feeds stdin; CloseStdin ends it; SIGTERM by signal name", async () => {
  const res = await fetch(`${agent.url}/process.Process/Start`, {
    method: "POST",
    headers: { "content-type": "application/connect+json", "X-Access-Token": TOKEN },
    body: encodeEnvelope(0, { process: { cmd: "cat" }, stdin: true }),
  });
  const reader = res.body!.getReader();
  const first = await reader.read();
  const pid = frames(first.value!)[0]!.msg.event.start.pid as number;
  const stream = new Uint8Array([...encodeEnvelope(0, { start: { process: { pid } } }), ...encodeEnvelope(0, { data: { input: { stdin: btoa("via stream\n") } } })]);
  const si = await connectCall("process.Process/StreamInput", stream);
  expect(frames(new Uint8Array(await si.arrayBuffer())).map((f) => f.flags)).toEqual([0, 2]);
  expect((await connectCall("process.Process/CloseStdin", JSON.stringify({ process: { pid } }), "application/json")).status).toBe(200);
  let buf = new Uint8Array(0);
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    buf = new Uint8Array([...buf, ...r.value]);
  }
  const f = frames(buf);
  expect(f.filter((x) => x.msg.event?.data).map((x) => atob(x.msg.event.data.stdout)).join("")).toBe("via stream\n");
  expect(f.find((x) => x.msg.event?.end)!.msg.event.end.exitCode).toBe(0);

  const sleeper = await sbx.commands.run("sleep 30", { background: true });
  const t = await connectCall("process.Process/SendSignal", JSON.stringify({ process: { pid: sleeper.pid }, signal: "SIGNAL_SIGTERM" }), "application/json");
  expect(t.status).toBe(200);
  const e = (await sleeper.wait().catch((x) => x)) as any;
  expect(e.error).toBe("signal: terminated");
});

test("polling watcher: CreateWatcher, GetWatcherEvents drains, RemoveWatcher", async () => {
  const dir = `${agent.dir}/poll`;
  await sbx.files.makeDir(`${dir}/inner`);
  const fds = () => readdirSync(`/proc/${agent.proc.pid}/fd`).length;
  const fdsBefore = fds();
  const call = async (m: string, body: unknown) => (await (await connectCall(`filesystem.Filesystem/${m}`, JSON.stringify(body), "application/json")).json()) as any;
  const { watcherId } = await call("CreateWatcher", { path: dir, recursive: false, include_entry: true });
  expect(typeof watcherId).toBe("string");
  await sbx.files.write(`${dir}/inner/q.txt`, "not watched: not recursive");
  await sbx.files.write(`${dir}/p.txt`, "p");
  let events: any[] = [];
  for (let i = 0; i < 40 && !events.some((e) => e.type === "EVENT_TYPE_WRITE"); i++) {
    await Bun.sleep(25);
    events = events.concat((await call("GetWatcherEvents", { watcherId })).events);
  }
  const w = events.find((e) => e.name === "p.txt" && e.type === "EVENT_TYPE_WRITE");
  expect(w?.entry?.type).toBe("FILE_TYPE_FILE");
  expect(events.filter((e) => e.name.startsWith("inner/"))).toEqual([]);
  expect((await call("GetWatcherEvents", { watcher_id: watcherId })).events).toEqual([]);
  expect(await call("RemoveWatcher", { watcherId })).toEqual({});
  expect((await call("GetWatcherEvents", { watcherId })).code).toBe("not_found");
  await Bun.sleep(50);
  expect(fds()).toBe(fdsBefore); // the inotify instance is closed
});

test("/init: a set token can only be changed by a caller that knows it; stale retries change nothing", async () => {
  const other = await startTestAgent();
  try {
    const t0 = Date.now();
    const at = (ms: number) => new Date(t0 + ms).toISOString();
    expect((await other.init({ accessToken: "first", timestamp: at(0), envVars: { V: "1" } })).status).toBe(204);
    const stolen = await other.init({ accessToken: "mine", timestamp: at(10) });
    expect(stolen.status).toBe(401);
    const cleared = await other.init({ timestamp: at(20) });
    expect(cleared.status).toBe(401);
    // same token in the body: a resume; env vars are replaced
    expect((await other.init({ accessToken: "first", timestamp: at(30), envVars: { W: "2" } })).status).toBe(204);
    const envs = async (tok: string) => fetch(`${other.url}/envs`, { headers: { "X-Access-Token": tok } });
    expect(await (await envs("first")).json()).toEqual({ W: "2" });
    // a stale retry (older timestamp) is acknowledged but ignored
    expect((await other.init({ accessToken: "first", timestamp: at(25), envVars: { OLD: "x" } })).status).toBe(204);
    expect(await (await envs("first")).json()).toEqual({ W: "2" });
    // the current token in X-Access-Token allows a change
    expect((await other.init({ accessToken: "second", timestamp: at(40) }, "first")).status).toBe(204);
    expect((await envs("first")).status).toBe(401);
    expect((await envs("second")).status).toBe(200);
  } finally {
    await other.stop();
  }
});

test("POST /files/compose concatenates and removes the sources; needs the token", async () => {
  const dir = `${agent.dir}/compose`;
  await sbx.files.write([{ path: `${dir}/p1`, data: "ab" }, { path: `${dir}/p2`, data: "cd" }]);
  const body = JSON.stringify({ source_paths: [`${dir}/p1`, `${dir}/p2`], destination: `${dir}/whole.txt` });
  expect((await fetch(`${agent.url}/files/compose`, { method: "POST", body })).status).toBe(401);
  const r = await fetch(`${agent.url}/files/compose`, { method: "POST", headers: { "X-Access-Token": TOKEN }, body });
  expect(await r.json()).toEqual({ path: `${dir}/whole.txt`, name: "whole.txt", type: "file" });
  expect(await sbx.files.read(`${dir}/whole.txt`)).toBe("abcd");
  expect(await sbx.files.exists(`${dir}/p1`)).toBe(false);
  const missing = await fetch(`${agent.url}/files/compose`, { method: "POST", headers: { "X-Access-Token": TOKEN }, body });
  expect(missing.status).toBe(404);
});

test("/init defaultWorkdir: commands start there, relative file paths still resolve against home", async () => {
  const other = await startTestAgent();
  try {
    expect((await other.init({ defaultUser: "user", defaultWorkdir: other.dir })).status).toBe(204);
    const s = other.sandbox();
    expect((await s.commands.run("pwd")).stdout).toBe(`${other.dir}\n`);
    expect((await s.commands.run("pwd", { cwd: "~" })).stdout).toBe("/home/user\n");
    expect((await s.files.getInfo("")).path).toBe(other.dir);
    expect((await s.files.getInfo(".")).path).toBe("/home/user");
  } finally {
    await other.stop();
  }
});

test("a missing program fails the Start stream with invalid_argument, for root and for user", async () => {
  for (const user of ["root", "user"]) {
    const res = await fetch(`${agent.url}/process.Process/Start`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "X-Access-Token": TOKEN, Authorization: "Basic " + btoa(`${user}:`) },
      body: encodeEnvelope(0, { process: { cmd: "no-such-program-xyz" }, stdin: false }),
    });
    const f = frames(new Uint8Array(await res.arrayBuffer()));
    expect(f).toEqual([{ flags: 2, msg: { error: { code: "invalid_argument", message: expect.stringContaining("not found") }, metadata: {} } }]);
  }
});
