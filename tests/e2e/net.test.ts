// Guest networking end to end (issue 13) with the real `e2b` SDK against an in-process daemon with networking on,
// inside the test host (scripts/test-e2e.sh). "The internet" is a dummy interface with 203.0.113.10/24 (TEST-NET-3)
// and a tiny HTTP server on it that answers with the source address it sees; a tiny DNS responder on 127.0.0.53
// (the test host's resolver for the run) answers internet.test. No traffic leaves the test host.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "e2b";
import { startTestDaemon, type TestDaemon } from "../../src/api/test-support.ts";
import { registerTemplate } from "../../src/templates/register.ts";
import type { Config } from "../../src/util/config.ts";

const REPO = join(import.meta.dir, "..", "..");
const IN_TESTHOST = process.env.ONEBOX_TESTHOST === "1";
// The template snapshot is an emulated cold boot (TCG) under load: minutes.
const BOOT_MS = 600_000;
const INTERNET = "203.0.113.10";
const NAME = "internet.test";
const OTHER = "203.0.113.20";
/** Names the test resolver answers with INTERNET: the domain-rule test allows one and sends the other as Host. */
const NAMES = [NAME, "allowed.test", "other.test"];
/** One of the test host's addresses the operator did not open (TEST-NET-2). */
const HOST_ADDR = "198.51.100.77";
/** The cloud metadata address: a server on the test host's dummy link stands for it (always denied: reserved). */
const METADATA = "169.254.169.254";
const root = `/tmp/obx-net-${process.pid}`;
// "The internet" is on the test host's own dummy link, so one of its addresses: always denied unless the operator
// opens it, as here (--net-allow-private). 198.51.100.77 on the same link stays a denied host address.
const CONFIG: Partial<Config> = { network: true, bootTimeoutMs: BOOT_MS, warmPoolSize: 1, netSlotPoolSize: 4, maxConcurrentCreates: 8, netAllowPrivate: ["203.0.113.0/24"], tls: true, tlsPort: 0 };

/** The image: `scripts/mkrootfs.sh --out .cache/api-e2e-base-template --variant base` on the outer host (curl). */
function imageDir(): string | null {
  const dir = process.env.ONEBOX_E2E_BASE_TEMPLATE_DIR ?? join(REPO, ".cache", "api-e2e-base-template");
  return existsSync(join(dir, "rootfs.ext4")) ? dir : null;
}

function sh(cmd: string): string {
  const r = Bun.spawnSync(["sh", "-c", cmd], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd} failed (${r.exitCode}): ${r.stdout}${r.stderr}`);
  return r.stdout.toString();
}

/** The TAP that routes slot address ip (docs/network.md: one route per slot, proto 111), or null. */
function tapOf(ip: string): string | null {
  const m = new RegExp(`^${ip.replace(/\./g, "\\.")} dev (\\S+)`, "m").exec(sh("ip route show table all proto 111"));
  return m?.[1] ?? null;
}

const linkExists = (tap: string) => sh("ip -o link show").split("\n").some((l) => l.split(": ")[1]?.split("@")[0] === tap);

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(50);
  }
}

/** A DNS answer for one question: A internet.test -> 203.0.113.10; anything else: no records (NOERROR/NXDOMAIN). */
/** Every name the test's upstream resolver was asked: what left the host for DNS. */
const asked: string[] = [];

function dnsAnswer(q: Buffer): Buffer | null {
  if (q.length < 17) return null;
  let i = 12;
  const labels: string[] = [];
  while (i < q.length && q[i] !== 0) {
    labels.push(q.subarray(i + 1, i + 1 + q[i]!).toString());
    i += 1 + q[i]!;
  }
  const qEnd = i + 5;
  if (qEnd > q.length) return null;
  const qtype = q.readUInt16BE(i + 1);
  const name = labels.join(".").toLowerCase();
  asked.push(name);
  const known = NAMES.includes(name);
  const answer = known && qtype === 1;
  const head = Buffer.alloc(12);
  q.copy(head, 0, 0, 2);
  head.writeUInt16BE(known ? 0x8180 : 0x8183, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answer ? 1 : 0, 6);
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...INTERNET.split(".").map(Number)]);
  return Buffer.concat([head, q.subarray(12, qEnd), answer ? rr : Buffer.alloc(0)]);
}

let d: TestDaemon;
let dataDir = "";
let http: ReturnType<typeof Bun.serve> | null = null;
let dns: Awaited<ReturnType<typeof Bun.udpSocket>> | null = null;
let resolvConf: string | null = null;
const opts = () => ({ apiKey: d.key, apiUrl: d.url, sandboxUrl: d.url, requestTimeoutMs: BOOT_MS });
const curl = async (s: Sandbox, url = `http://${INTERNET}/`) => (await s.commands.run(`curl -sS --max-time 20 ${url}`, { timeoutMs: 60_000 })).stdout;
/** curl's exit code: 0 answered, 28 timed out (dropped), 7 refused (reached the host). */
const probe = async (s: Sandbox, url: string) => {
  const r = await s.commands.run(`curl -sS -o /dev/null --connect-timeout 3 --max-time 5 ${url}; echo "exit=$?"`, { timeoutMs: 30_000 });
  return r.stdout.trim().split("\n").pop()!;
};
let other: ReturnType<typeof Bun.serve> | null = null;
/** The sandbox's networkDrops (GET /sandboxes/{id}/metrics). */
const dropsOf = async (id: string) => {
  const res = await fetch(`${d.url}/sandboxes/${id}/metrics`, { headers: { "X-API-Key": d.key } });
  // The last entry is the sample of now (the ones before it are the recorded history, without drops).
  return ((await res.json()) as { networkDrops: Record<string, number> }[]).at(-1)!.networkDrops;
};
/** DNS packets the test host sent or forwarded (nft counters in a table of the test's own): a query leaving toward
 *  any resolver, the test's upstream on 127.0.0.53 included, or a guest's own query routed through the host. */
const DNS_COUNTERS = `table ip obxtest {
  chain sent { type filter hook output priority 0; policy accept; udp dport 53 counter; tcp dport 53 counter; }
  chain routed { type filter hook forward priority 0; policy accept; udp dport 53 counter; tcp dport 53 counter; }
}
`;
const dnsPacketsOut = () =>
  [...sh("nft list table ip obxtest").matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);

if (IN_TESTHOST && !imageDir()) console.warn("net: skipped: no image; build .cache/api-e2e-base-template on the outer host (see imageDir())");

describe.skipIf(!IN_TESTHOST || !imageDir())("guest networking through onebox", () => {
  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    // "The internet": a dummy link with a TEST-NET-3 address, an HTTP server that names its client.
    sh(`ip link add obxtest-inet type dummy && ip addr add ${INTERNET}/24 dev obxtest-inet && ip link set obxtest-inet up`);
    http = Bun.serve({ hostname: INTERNET, port: 80, fetch: (req, server) => new Response(`hello ${server.requestIP(req)?.address}\n`) });
    // A second server on the same link (the policy tests allow one and not the other).
    sh(`ip addr add ${OTHER}/32 dev obxtest-inet`);
    other = Bun.serve({ hostname: OTHER, port: 80, fetch: () => new Response("other\n") });
    // The host's resolver for this run (the forwarder reads /etc/resolv.conf at start): a responder on 127.0.0.53.
    dns = await Bun.udpSocket({
      hostname: "127.0.0.53",
      port: 53,
      socket: {
        data(sock, buf, port, addr) {
          const a = dnsAnswer(Buffer.from(buf));
          if (a) sock.send(a, port, addr);
        },
      },
    });
    resolvConf = existsSync("/etc/resolv.conf") ? readFileSync("/etc/resolv.conf", "utf8") : null;
    rmSync("/etc/resolv.conf", { force: true });
    writeFileSync("/etc/resolv.conf", "nameserver 127.0.0.53\n");

    const initrd = join(root, "initramfs.cpio.gz");
    sh(`bash scripts/mkinitramfs.sh --modules ${join(process.env.ONEBOX_TEST_KERNEL_DIR ?? "", "modules")} --out ${initrd}`);
    dataDir = mkdtempSync(join(root, "data-"));
    d = await startTestDaemon(CONFIG, dataDir);
    expect(d.config.network).toBe(true); // the test host has what networking needs
    await registerTemplate(d.state, d.dataDir, {
      name: "net-base",
      from: imageDir()!,
      kernel: process.env.ONEBOX_TEST_KERNEL ?? "",
      initrd,
      cpuCount: 1,
      memoryMb: 256,
      diskSizeMb: 2048,
    });
    // The template snapshot (its VM has a slot and eth0 up), made before the creates: minutes, emulated.
    const t0 = performance.now();
    await d.manager.warmTemplates();
    console.log(`net-base snapshot made in ${Math.round(performance.now() - t0)} ms`);
  }, 1_500_000);

  afterAll(async () => {
    for (const row of d?.state.sandboxes.live() ?? []) await d.manager.kill(row.id).catch(() => undefined);
    await d?.stop();
    http?.stop(true);
    other?.stop(true);
    dns?.close();
    Bun.spawnSync(["ip", "link", "del", "obxtest-inet"]);
    rmSync("/etc/resolv.conf", { force: true });
    if (resolvConf !== null) writeFileSync("/etc/resolv.conf", resolvConf);
    rmSync(root, { recursive: true, force: true });
  });

  let a: Sandbox;
  let aIp = "";

  test("a sandbox curls the internet, seen with its own slot address; names resolve through the gateway", async () => {
    a = await Sandbox.create("net-base", { ...opts(), timeoutMs: 1_800_000 });
    const out = await curl(a);
    expect(out).toMatch(/^hello 198\.18\.\d+\.\d+\n$/);
    aIp = out.trim().split(" ")[1]!;
    expect(tapOf(aIp)).toMatch(/^obx\d+$/);
    // DNS: the guest's resolver is the gateway (169.254.68.5), the daemon's forwarder asks the host's.
    expect((await a.commands.run("cat /etc/resolv.conf")).stdout).toContain("nameserver 169.254.68.5");
    expect(await curl(a, `http://${NAME}/`)).toBe(`hello ${aIp}\n`);
  }, BOOT_MS);

  test("base has E2B's tools: `python` (3) with pip, Node.js with npm, git, curl", async () => {
    // npm and pip are looked up, not started: each takes tens of seconds in the emulated test host.
    const r = await a.commands.run("python -c 'import sys; print(sys.version_info[0])' && node -e 'console.log(process.versions.node)' && command -v pip npm git curl");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`3\n${r.stdout.split("\n")[1]}\n/usr/bin/pip\n/usr/bin/npm\n/usr/bin/git\n/usr/bin/curl\n`);
    expect(r.stdout.split("\n")[1]).toMatch(/^\d+\.\d+\.\d+$/);
  }, BOOT_MS);

  test("clones reach it at once, each with its own source address", async () => {
    const clones = await Promise.all([0, 1, 2].map(() => Sandbox.create("net-base", { ...opts(), timeoutMs: 600_000 })));
    const seen = await Promise.all(clones.map((c) => curl(c)));
    const ips = seen.map((s) => s.trim().split(" ")[1]);
    expect(new Set([...ips, aIp]).size).toBe(4);
    for (const ip of ips) expect(ip).toMatch(/^198\.18\./);
    await Promise.all(clones.map((c) => c.kill()));
  }, BOOT_MS);

  test("getHost(port) over TLS (onebox serve --tls): E2B code's fetch(\"https://\" + getHost(8000)) reaches a server in the sandbox", async () => {
    const srv = await a.commands.run("cd /tmp && exec python3 -m http.server 8000", { background: true, timeoutMs: 0 });
    try {
      const ca = await (await fetch(`${d.url}/tls/ca.crt`)).text(); // public: what a user saves for NODE_EXTRA_CA_CERTS
      const host = a.getHost(8000);
      expect(host).toBe(`8000-${a.sandboxId}.localhost:${d.config.tlsPort}`);
      // A secure sandbox's ports take its envd token (docs/api.md "Data-plane access"); the certificate is made for
      // this name at the handshake and checked against onebox's CA only.
      const get = () => fetch(`https://${host}/`, { tls: { ca }, headers: { "X-Access-Token": a.envdAccessToken! } });
      let res = await get();
      for (let i = 0; res.status === 502 && i < 100; i++) res = (await Bun.sleep(200), await get()); // until it listens
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("Directory listing for /");
    } finally {
      await srv.kill();
    }
  }, 120_000);

  test("always denied, whatever the policy: cloud metadata, another sandbox's address, the gateway's other ports; a spoofed source is dropped", async () => {
    // 169.254.169.254 on the test host's link, answering: the host reaches it, a sandbox must not.
    sh(`ip addr add ${METADATA}/32 dev obxtest-inet`);
    const metadata = Bun.serve({ hostname: METADATA, port: 80, fetch: () => new Response("secret\n") });
    const b = await Sandbox.create("net-base", { ...opts(), timeoutMs: 600_000 });
    try {
      expect(await (await fetch(`http://${METADATA}/`)).text()).toBe("secret\n");
      /** Runs `step` and returns by how much each of a's drop counters grew meanwhile. */
      const grew = async (step: () => Promise<void>) => {
        const before = await dropsOf(a.sandboxId);
        await step();
        const after = await dropsOf(a.sandboxId);
        return Object.fromEntries(Object.entries(after).filter(([k, n]) => n > before[k]!).map(([k, n]) => [k, n - before[k]!]));
      };
      // The test host holds the address itself here, so it is one of the host's (`host`, checked first); a cloud's
      // metadata service elsewhere is `reserved` (src/sys/bpf-net.test.ts).
      expect(Object.keys(await grew(async () => expect(await probe(a, `http://${METADATA}/`)).toBe("exit=28")))).toContain("host");
      // b's slot address (its envd listens on 49983 there): reached by nothing else, not by a (the sandbox range).
      const bIp = (await curl(b)).trim().split(" ")[1]!;
      expect(bIp).not.toBe(aIp);
      expect(Object.keys(await grew(async () => expect(await probe(a, `http://${bIp}:49983/health`)).toBe("exit=28")))).toContain("host");
      // The gateway is the host: only DNS and ping there, not the daemon's port (which listens on every address).
      const gw = await grew(async () => expect(await probe(a, `http://169.254.68.5:${new URL(d.url).port}/health`)).toBe("exit=28"));
      expect(Object.keys(gw)).toContain("gatewayPort");
      // Spoofing: the guest gives itself another address and sends from it; dropped before routing.
      const before = await dropsOf(a.sandboxId);
      const spoof = await a.commands.run(
        `sudo -n ip addr add 169.254.68.9/32 dev eth0 && curl -sS -o /dev/null --interface 169.254.68.9 --connect-timeout 3 --max-time 5 http://${INTERNET}/; echo "exit=$?"; sudo -n ip addr del 169.254.68.9/32 dev eth0`,
        { timeoutMs: 30_000 },
      );
      expect(spoof.stdout.trim().split("\n").pop()).toBe("exit=28");
      expect(await curl(a)).toBe(`hello ${aIp}\n`); // a's own address still works
      expect((await dropsOf(a.sandboxId)).spoof).toBeGreaterThan(before.spoof!);
      // GET /metrics sums every slot's counters since the daemon started (issue 19's denied connections).
      const metrics = await (await fetch(`${d.url}/metrics`, { headers: { "X-API-Key": d.key } })).text();
      const denied = (reason: string) => Number(new RegExp(`^onebox_network_denied_total\\{reason="${reason}"\\} (\\d+)$`, "m").exec(metrics)?.[1]);
      const aNow = await dropsOf(a.sandboxId);
      for (const reason of ["spoof", "gatewayPort", "host"]) expect(denied(reason)).toBeGreaterThanOrEqual(aNow[reason]!);
    } finally {
      await b.kill();
      metadata.stop(true);
      Bun.spawnSync(["ip", "addr", "del", `${METADATA}/32`, "dev", "obxtest-inet"]);
    }
  }, 180_000);

  test("internet off: curl and DNS fail, and no DNS query leaves the test host (nft counters, the upstream resolver's log)", async () => {
    sh(`nft -f - <<'EOF'\n${DNS_COUNTERS}EOF`);
    const off = await Sandbox.create("net-base", { ...opts(), timeoutMs: 600_000, allowInternetAccess: false });
    try {
      // The counters count: a's lookup (internet on) goes out to the test's upstream resolver.
      const n0 = dnsPacketsOut();
      expect((await a.commands.run("getent hosts internet.test")).stdout).toContain(INTERNET);
      expect(dnsPacketsOut()).toBeGreaterThan(n0);
      const n1 = dnsPacketsOut();
      asked.length = 0;
      expect(await probe(off, `http://${INTERNET}/`)).toBe("exit=28");
      expect(await probe(off, `http://${NAME}/`)).toBe("exit=6");
      const getent = await off.commands.run(`getent hosts ${NAME}; echo "exit=$?"`, { timeoutMs: 30_000 });
      expect(getent.stdout.trim()).not.toBe("exit=0");
      expect(getent.stdout).not.toContain(INTERNET);
      // A query sent straight to another server (not the gateway) is policy-dropped in the TAP, before routing.
      expect((await off.commands.run(`bash -c 'printf x > /dev/udp/${INTERNET}/53' && echo sent`, { timeoutMs: 30_000 })).stdout).toBe("sent\n");
      expect(asked).toEqual([]);
      expect(dnsPacketsOut()).toBe(n1);
      expect((await dropsOf(off.sandboxId)).policy).toBeGreaterThan(0);
    } finally {
      await off.kill();
      Bun.spawnSync(["nft", "delete", "table", "ip", "obxtest"]);
    }
  }, 180_000);

  test("egress policy: only the allowed server answers, PUT /network opens another at once, the host's addresses (the daemon's port) are never reached; allowPublicTraffic: false guards the ports", async () => {
    // A second server on the same link, and a host address the operator did not open, with a listener on every
    // address standing for any host service; the daemon's own port listens on 127.0.0.1 only (so without the
    // always-denied list a probe to it would be refused at once, not dropped).
    sh(`ip addr add ${HOST_ADDR}/32 dev obxtest-inet`);
    const anyAddr = Bun.serve({ hostname: "0.0.0.0", port: 0, fetch: () => new Response("host service\n") });
    try {
      expect(await (await fetch(`http://${HOST_ADDR}:${anyAddr.port}/`)).text()).toBe("host service\n"); // the host reaches it
      const b = await Sandbox.create("net-base", {
        ...opts(),
        timeoutMs: 600_000,
        network: { allowOut: [INTERNET], denyOut: ["0.0.0.0/0"], allowPublicTraffic: false },
      });
      try {
        // allowPublicTraffic: false: a trafficAccessToken, without which a port is 403 (with it: past the check, to a
        // port nothing listens on: 502).
        expect(b.trafficAccessToken).toBeString();
        const toPort = (headers: Record<string, string>) =>
          fetch(`${d.url}/`, { headers: { "E2b-Sandbox-Id": b.sandboxId, "E2b-Sandbox-Port": "8000", ...headers } });
        expect((await toPort({})).status).toBe(403);
        expect((await toPort({ "e2b-traffic-access-token": b.trafficAccessToken! })).status).toBe(502);
        expect(await curl(b)).toMatch(/^hello 198\.18\./);
        expect(await probe(b, `http://${OTHER}/`)).toBe("exit=28");
        const drops = () => dropsOf(b.sandboxId);
        expect((await drops()).policy).toBeGreaterThan(0);
        // PUT /network (the SDK's updateNetwork) replaces the whole policy; in force when it answers.
        await b.updateNetwork({ allowOut: [INTERNET, OTHER], denyOut: ["0.0.0.0/0"] });
        expect(await curl(b, `http://${OTHER}/`)).toBe("other\n");
        // The host's own addresses: dropped (a timeout, not a refusal), whatever the policy, counted as "host".
        const port = new URL(d.url).port;
        const hostBefore = (await drops()).host;
        expect(await probe(b, `http://${HOST_ADDR}:${port}/health`)).toBe("exit=28");
        expect(await probe(b, `http://${HOST_ADDR}:${anyAddr.port}/`)).toBe("exit=28");
        expect((await drops()).host).toBeGreaterThan(hostBefore);
      } finally {
        await b.kill();
      }
    } finally {
      anyAddr.stop(true);
      Bun.spawnSync(["ip", "addr", "del", `${HOST_ADDR}/32`, "dev", "obxtest-inet"]);
    }
  }, 120_000);

  test("PUT /network cuts an open connection it now denies: the server's next write meets a reset, the guest sees nothing more", async () => {
    // A long-lived TCP connection from the guest (bash's /dev/tcp) to a server on "the internet", which the test
    // holds open and writes to before and after the PUT.
    const conns: { sock: import("bun").Socket<undefined>; got: string; closed: string | null }[] = [];
    const server = Bun.listen<undefined>({
      hostname: INTERNET,
      port: 7000,
      socket: {
        open: (sock) => void conns.push({ sock, got: "", closed: null }),
        data: (sock, buf) => void (conns.find((c) => c.sock === sock)!.got += buf.toString()),
        error: (sock, err) => void (conns.find((c) => c.sock === sock)!.closed ??= `error ${(err as NodeJS.ErrnoException).code ?? err.message}`),
        close: (sock) => void (conns.find((c) => c.sock === sock)!.closed ??= "closed"),
      },
    });
    const e = await Sandbox.create("net-base", { ...opts(), timeoutMs: 600_000, network: { allowOut: [INTERNET], denyOut: ["0.0.0.0/0"] } });
    try {
      let seen = "";
      const cmd = await e.commands.run(`exec 3<>/dev/tcp/${INTERNET}/7000; echo hi >&3; cat <&3`, {
        background: true,
        timeoutMs: 0,
        onStdout: (s) => void (seen += s),
      });
      await until(() => conns[0]?.got === "hi\n", 30_000);
      const c = conns[0]!;
      c.sock.write("before\n");
      await until(() => seen.includes("before\n"), 30_000); // the connection works both ways
      await e.updateNetwork({ allowOut: [OTHER], denyOut: ["0.0.0.0/0"] });
      // The flow's conntrack entry is gone with the PUT: the server's next segment finds no mapping and the host
      // answers it with a reset, so the server learns at once that the connection is over.
      c.sock.write("after\n");
      await until(() => c.closed !== null, 15_000);
      expect(c.closed).toMatch(/^(error ECONNRESET|closed)$/);
      await Bun.sleep(500);
      expect(seen).not.toContain("after");
      // And the guest cannot open it again, while the newly allowed server answers.
      expect(await probe(e, `http://${INTERNET}:7000/`)).toBe("exit=28");
      expect(await curl(e, `http://${OTHER}/`)).toBe("other\n");
      await cmd.kill();
    } finally {
      await e.kill();
      server.stop(true);
    }
  }, 180_000);

  test("domain rules: the allowed name works through the name proxy, another name on the same (learned) address is refused by its Host, an address not learned is dropped", async () => {
    const c = await Sandbox.create("net-base", { ...opts(), timeoutMs: 600_000, network: { allowOut: ["allowed.test"], denyOut: ["0.0.0.0/0"] } });
    try {
      // Resolved through the gateway's forwarder (learned), then steered to the proxy, which connects to allowed.test
      // as the host resolves it: the server sees the host, not the slot.
      expect(await curl(c, "http://allowed.test/")).toMatch(/^hello \d+\.\d+\.\d+\.\d+\n$/);
      // The same address, another name: the proxy closes the connection (curl: empty reply or reset).
      expect(await probe(c, `-H 'Host: other.test' http://${INTERNET}/`)).toMatch(/^exit=(52|55|56)$/);
      expect((await dropsOf(c.sandboxId)).name).toBeGreaterThan(0); // counted as the proxy's refusal
      expect(await probe(c, "http://other.test/")).toBe("exit=6"); // and the name itself does not resolve
      expect(await probe(c, `http://${OTHER}/`)).toBe("exit=28"); // never learned: dropped
    } finally {
      await c.kill();
    }
  }, 120_000);

  test("pause -> resume keeps it working (a new slot; the paused sandbox holds none), its egress policy included", async () => {
    await a.updateNetwork({ denyOut: [`${OTHER}/32`] });
    expect(await probe(a, `http://${OTHER}/`)).toBe("exit=28");
    const tap = tapOf(aIp)!;
    expect(await a.pause()).toBe(true);
    await until(() => !linkExists(tap) && tapOf(aIp) === null);
    a = await Sandbox.connect(a.sandboxId, opts());
    const out = await curl(a);
    expect(out).toMatch(/^hello 198\.18\./);
    aIp = out.trim().split(" ")[1]!;
    expect(await probe(a, `http://${OTHER}/`)).toBe("exit=28"); // the new slot got the stored policy
  }, BOOT_MS);

  test("a daemon restart keeps it working (the slot is re-adopted with its sandbox)", async () => {
    const tap = tapOf(aIp);
    await d.stop();
    d = await startTestDaemon(CONFIG, dataDir);
    expect(tapOf(aIp)).toBe(tap);
    a = await Sandbox.connect(a.sandboxId, opts());
    expect(await curl(a)).toBe(`hello ${aIp}\n`);
    expect(await probe(a, `http://${OTHER}/`)).toBe("exit=28"); // the adopted slot's policy is the stored one
  }, BOOT_MS);

  test("after kill nothing of that sandbox is left: no TAP, no route", async () => {
    const tap = tapOf(aIp)!;
    await a.kill();
    await until(() => !linkExists(tap) && tapOf(aIp) === null);
    // The slots left are the pool's ready ones and the warm pool entry's: none routes a sandbox's address that ended.
    expect(sh("ip -o link show").split("\n").filter((l) => / obx\d+[:@]/.test(l)).length).toBeLessThanOrEqual(CONFIG.netSlotPoolSize! + 1);
  }, 120_000);
});
