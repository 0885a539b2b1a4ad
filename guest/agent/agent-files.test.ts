// Drives the agent's filesystem service and /files with the official e2b SDK (e2b-protocol.md §3.3, §3.4).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync, rmSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { FilesystemEventType, Sandbox, type FilesystemEvent } from "e2b";
import { setXattr } from "./libc.ts";
import { ensureTestUser, startTestAgent, type RunningAgent } from "./test-harness.ts";

let agent: RunningAgent;
let sbx: Sandbox;
let d: string;

beforeAll(async () => {
  ensureTestUser();
  agent = await startTestAgent();
  expect((await agent.init({ defaultUser: "user" })).status).toBe(204);
  sbx = agent.sandbox();
  d = agent.dir;
});
afterAll(async () => agent.stop());

test("write/read text and bytes; new files are user:user -rw-r--r--", async () => {
  const info = await sbx.files.write(`${d}/a/b/hello.txt`, "hello world");
  expect(info).toMatchObject({ path: `${d}/a/b/hello.txt`, name: "hello.txt", type: "file" });
  expect(await sbx.files.read(`${d}/a/b/hello.txt`)).toBe("hello world");
  const bytes = new Uint8Array(256).map((_, i) => i);
  await sbx.files.write(`${d}/bin.dat`, bytes.buffer);
  expect(await sbx.files.read(`${d}/bin.dat`, { format: "bytes" })).toEqual(bytes);
  const st = await sbx.files.getInfo(`${d}/a/b/hello.txt`);
  expect(st).toMatchObject({ type: "file", size: 11, owner: "user", group: "user", permissions: "-rw-r--r--", mode: 0o644 });
  expect(st.modifiedTime).toBeInstanceOf(Date);
  const dir = await sbx.files.getInfo(`${d}/a/b`);
  expect(dir).toMatchObject({ type: "dir", owner: "user", permissions: "drwxr-xr-x" });
  // no temp files left behind by the atomic write
  expect(readdirSync(`${d}/a/b`)).toEqual(["hello.txt"]);
  // empty file
  await sbx.files.write(`${d}/empty`, "");
  expect(await sbx.files.read(`${d}/empty`)).toBe("");
});

test("writeFiles (multipart, several parts) and octet-stream with gzip", async () => {
  const res = await sbx.files.write([
    { path: `${d}/m/one.txt`, data: "1" },
    { path: `${d}/m/two.txt`, data: new Blob(["22"]) },
    { path: `${d}/m/ünï cödé "q".txt`, data: "u" },
  ]);
  expect((res as { name: string }[]).map((r) => r.name)).toEqual(["one.txt", "two.txt", 'ünï cödé "q".txt']);
  expect(await sbx.files.read(`${d}/m/ünï cödé "q".txt`)).toBe("u");
  expect(await sbx.files.read(`${d}/m/two.txt`)).toBe("22");
  await sbx.files.write(`${d}/gz.txt`, "compressed ".repeat(1000), { gzip: true });
  expect(await sbx.files.read(`${d}/gz.txt`, { gzip: true })).toBe("compressed ".repeat(1000));
});

test("relative paths and ~ resolve against the user's home", async () => {
  const name = `onebox-agent-test-${process.pid}.txt`;
  try {
    const w = await sbx.files.write(name, "rel");
    expect((w as { path: string }).path).toBe(`/home/user/${name}`);
    expect(await sbx.files.read(`~/${name}`)).toBe("rel");
  } finally {
    rmSync(`/home/user/${name}`, { force: true });
  }
});

test("pseudo-files that report size 0 are read to their end (/proc)", async () => {
  const version = await sbx.files.read("/proc/version");
  expect(version).toBe(readFileSync("/proc/version", "utf8"));
  expect(version.length).toBeGreaterThan(0);
});

test("list depth, exists, makeDir, rename, remove", async () => {
  expect(await sbx.files.makeDir(`${d}/tree/x/y`)).toBe(true);
  expect(await sbx.files.makeDir(`${d}/tree/x/y`)).toBe(false);
  await sbx.files.write(`${d}/tree/f.txt`, "f");
  const l1 = await sbx.files.list(`${d}/tree`);
  expect(l1.map((e) => e.name).sort()).toEqual(["f.txt", "x"]);
  const l2 = await sbx.files.list(`${d}/tree`, { depth: 3 });
  expect(l2.map((e) => e.path).sort()).toEqual([`${d}/tree/f.txt`, `${d}/tree/x`, `${d}/tree/x/y`]);
  expect(await sbx.files.exists(`${d}/tree/f.txt`)).toBe(true);
  expect(await sbx.files.exists(`${d}/tree/nope`)).toBe(false);
  const moved = await sbx.files.rename(`${d}/tree/f.txt`, `${d}/tree/x/g.txt`);
  expect(moved).toMatchObject({ name: "g.txt", path: `${d}/tree/x/g.txt` });
  expect(await sbx.files.exists(`${d}/tree/f.txt`)).toBe(false);
  await sbx.files.remove(`${d}/tree`);
  expect(existsSync(`${d}/tree`)).toBe(false);
  await sbx.files.remove(`${d}/never-existed`); // succeeds on a missing path
  const nf = await sbx.files.read(`${d}/never-existed`).catch((x) => x);
  expect(nf?.constructor?.name).toBe("FileNotFoundError");
  const isDir = await sbx.files.read(d).catch((x) => x);
  expect(isDir?.constructor?.name).toBe("InvalidArgumentError");
  const gi = await sbx.files.getInfo(`${d}/never-existed`).catch((x) => x);
  expect(gi?.constructor?.name).toBe("FileNotFoundError");
  const lsFile = await sbx.files.list(`${d}/bin.dat`).catch((x) => x);
  expect(lsFile?.constructor?.name).toBe("InvalidArgumentError");
});

test("list: entries come sorted by name, depth-first, as envd's filepath.WalkDir gives them", async () => {
  // created out of order so the directory's own order (hash or creation order) differs from the name order
  for (const n of ["zeta", "Beta", "alpha", "m/b.txt", "m/a.txt", "m/sub/z", "m/sub/c", "_x", "10", "9"]) {
    await sbx.files.write(`${d}/order/${n}`, n);
  }
  const l = await sbx.files.list(`${d}/order`, { depth: 3 });
  expect(l.map((e) => e.path.slice(`${d}/order/`.length))).toEqual(["10", "9", "Beta", "_x", "alpha", "m", "m/a.txt", "m/b.txt", "m/sub", "m/sub/c", "m/sub/z", "zeta"]);
});

test("metadata: X-Metadata-* become user.e2b.* xattrs where the filesystem allows", async () => {
  const w = await sbx.files.write(`${d}/meta.txt`, "m", { metadata: { owner: "alice", stage: "draft" } });
  expect((w as { metadata?: Record<string, string> }).metadata).toEqual({ owner: "alice", stage: "draft" });
  const probe = `${d}/xattr-probe`;
  writeFileSync(probe, "");
  if (setXattr(probe, "user.probe", "1")) {
    expect((await sbx.files.getInfo(`${d}/meta.txt`)).metadata).toEqual({ owner: "alice", stage: "draft" });
  }
});

test("watchDir: start, create/write/remove events, recursive", async () => {
  await sbx.files.makeDir(`${d}/w/sub`);
  const events: FilesystemEvent[] = [];
  const h = await sbx.files.watchDir(`${d}/w`, (e) => void events.push(e), { recursive: true, timeoutMs: 20_000 });
  await sbx.files.write(`${d}/w/new.txt`, "x");
  await sbx.files.write(`${d}/w/sub/deep.txt`, "y");
  writeFileSync(`${d}/w/direct.txt`, "z");
  await sbx.files.rename(`${d}/w/direct.txt`, `${d}/w/moved.txt`);
  Bun.spawnSync(["chmod", "600", `${d}/w/moved.txt`]);
  await sbx.files.makeDir(`${d}/w/sub/later`);
  await Bun.sleep(50); // the new directory's watch is added when its CREATE arrives
  writeFileSync(`${d}/w/sub/later/x`, "x");
  await sbx.files.remove(`${d}/w/new.txt`);
  const has = (name: string, type: FilesystemEventType) => events.some((e) => e.name === name && e.type === type);
  const want: [string, FilesystemEventType][] = [
    ["new.txt", FilesystemEventType.CREATE],
    ["new.txt", FilesystemEventType.WRITE],
    ["direct.txt", FilesystemEventType.WRITE],
    ["sub/deep.txt", FilesystemEventType.WRITE],
    ["new.txt", FilesystemEventType.REMOVE],
    ["direct.txt", FilesystemEventType.RENAME],
    ["moved.txt", FilesystemEventType.CREATE],
    ["moved.txt", FilesystemEventType.CHMOD],
    ["sub/later", FilesystemEventType.CREATE],
    ["sub/later/x", FilesystemEventType.WRITE],
  ];
  for (let i = 0; i < 100 && !want.every(([n, t]) => has(n, t)); i++) await Bun.sleep(50);
  await h.stop();
  expect(want.filter(([n, t]) => !has(n, t))).toEqual([]);
  expect(events.some((e) => e.name.includes(".onebox-upload-"))).toBe(false);
  const missing = await sbx.files.watchDir(`${d}/nope`, () => {}).catch((x) => x);
  expect(missing?.constructor?.name).toBe("FileNotFoundError");
});

test("watchDir: an upload gives envd's events in envd's order (CREATE, CHMOD, WRITE), also in a new subdirectory", async () => {
  await sbx.files.makeDir(`${d}/wo`);
  const events: string[] = [];
  const h = await sbx.files.watchDir(`${d}/wo`, (e) => void events.push(`${e.name} ${e.type}`), { recursive: true, timeoutMs: 20_000 });
  await sbx.files.write(`${d}/wo/new.txt`, "x");
  await sbx.files.write(`${d}/wo/sub/deep.txt`, "y");
  const want = ["new.txt create", "new.txt chmod", "new.txt write", "sub create", "sub chmod", "sub/deep.txt create", "sub/deep.txt chmod", "sub/deep.txt write"];
  for (let i = 0; i < 60 && events.length < want.length; i++) await Bun.sleep(50);
  await Bun.sleep(700); // nothing more may follow
  await h.stop();
  expect(events).toEqual(want);
});

test("GET /files honours Range", async () => {
  await sbx.files.write(`${d}/range.txt`, "0123456789");
  const r = await fetch(`${agent.url}/files?path=${encodeURIComponent(`${d}/range.txt`)}`, { headers: { Range: "bytes=2-5" } });
  expect(r.status).toBe(206);
  expect(r.headers.get("content-range")).toBe("bytes 2-5/10");
  expect(await r.text()).toBe("2345");
});

test("symlinks: target's type, Lrwxrwxrwx permissions, resolved symlinkTarget", async () => {
  await sbx.files.write(`${d}/link-target.txt`, "t");
  Bun.spawnSync(["ln", "-s", `${d}/link-target.txt`, `${d}/the-link`]);
  const info = await sbx.files.getInfo(`${d}/the-link`);
  expect(info).toMatchObject({ type: "file", permissions: "Lrwxrwxrwx", symlinkTarget: `${d}/link-target.txt` });
  expect(await sbx.files.read(`${d}/the-link`)).toBe("t");
});

test("paths: ~other is rejected, an empty path means the default workdir, Remove refuses an empty path", async () => {
  const e = await sbx.files.exists("~root/x").catch((x) => x);
  expect(e?.constructor?.name).toBe("InvalidArgumentError");
  const info = await sbx.files.getInfo("");
  expect(info.path).toBe("/home/user");
  const r = await sbx.files.remove("").catch((x) => x);
  expect(r?.constructor?.name).toBe("InvalidArgumentError");
  expect(existsSync("/home/user")).toBe(true);
});

test("overwrite: keeps mode, owner becomes the uploader, symlinks are written through", async () => {
  const p = `${d}/exec.sh`;
  writeFileSync(p, "old");
  Bun.spawnSync(["chmod", "750", p]);
  await sbx.files.write(p, "new");
  expect(await sbx.files.getInfo(p)).toMatchObject({ permissions: "-rwxr-x---", owner: "user" });
  Bun.spawnSync(["ln", "-s", p, `${d}/exec-link`]);
  await sbx.files.write(`${d}/exec-link`, "via link");
  expect(await sbx.files.read(p)).toBe("via link");
  expect((await sbx.files.getInfo(`${d}/exec-link`)).permissions).toBe("Lrwxrwxrwx");
});

test("an upload cut off mid-body leaves neither a partial file nor a temp file", async () => {
  const dir = `${d}/cut`;
  await sbx.files.makeDir(dir);
  let n = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (n++ < 20) c.enqueue(new Uint8Array(64 * 1024));
      else c.error(new Error("client gave up"));
    },
  });
  const r = await fetch(`${agent.url}/files?path=${encodeURIComponent(`${dir}/partial.bin`)}`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body,
  }).catch((e) => e);
  expect(r).toBeInstanceOf(Error);
  for (let i = 0; i < 40 && readdirSync(dir).length; i++) await Bun.sleep(25);
  expect(readdirSync(dir)).toEqual([]);
  expect(await sbx.files.exists(`${dir}/partial.bin`)).toBe(false);
});

test("ENOSPC on upload is 507 (NotEnoughSpaceError) and leaves no temp file", async () => {
  const mnt = `${d}/small-fs`;
  await sbx.files.makeDir(mnt);
  const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]);
  if (m.exitCode !== 0) {
    console.warn(`skipping the ENOSPC check: cannot mount a tmpfs here (${m.stderr.toString().trim()})`);
    return;
  }
  try {
    const e = await sbx.files.write(`${mnt}/big.bin`, new Uint8Array(3 * 1024 * 1024).buffer).catch((x) => x);
    expect(e?.constructor?.name).toBe("NotEnoughSpaceError");
    expect(readdirSync(mnt)).toEqual([]);
  } finally {
    Bun.spawnSync(["umount", mnt]);
  }
});
