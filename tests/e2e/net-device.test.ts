// e2e: a Debian guest under onebox-vmm with virtio-net on a TAP of the test host (no eBPF, no slot pool: the device
// and onebox-init's network alone). The host side of the TAP plays the gateway; the guest's `net` test mode connects
// to it over TCP through eth0 configured from onebox.net= (docs/guest.md "Network") and moves 4 MiB each way
// (offloaded segments, mergeable rx buffers), checked byte by byte; a clone of its snapshot, restored onto another TAP
// (as another slot's), does the same with the configuration made at boot. Traffic stays in the test host.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { netCmdlineArg, ONEBOX_TEST_NET_PREFIX } from "../../guest/protocol.ts";
import { GUEST_NET } from "../../src/net/addresses.ts";
import { VmProcess, type VmSpec } from "../../src/vmm/index.ts";
import { BOOT_TIMEOUT_MS, IN_TESTHOST, scratchRoot, startTestVm, type TestVm } from "./lib/harness.ts";

const TAP = "obxe2e0";
const PORT = 5000;
/** Both ways, in 64 KiB writes: TCP segments the guest and the host offload (TSO, partial checksums) and rx frames
 *  spread over mergeable buffers. The guest's test mode uses the same pattern (guest/init/test-modes.c). */
const BYTES = 4 << 20;
const pattern = (i: number) => (i * 7 + (i >>> 12)) & 0xff;

/** Reads the guest's `onebox-net-test N` line and N bytes of the pattern, then answers `pong <addr> ok|bad <N>` and
 *  BYTES of the pattern, and closes. */
function serve(s: Socket, peers: string[]): void {
  let head = "";
  let got = 0;
  let bad = 0;
  let want = -1;
  let done = false;
  s.on("data", (d: Buffer) => {
    if (done) return;
    let at = 0;
    if (want < 0) {
      head += d.toString("latin1");
      const nl = head.indexOf("\n");
      if (nl < 0) return;
      const m = /^onebox-net-test (\d+)$/.exec(head.slice(0, nl));
      if (!m) return void s.destroy();
      want = Number(m[1]);
      at = d.length - (head.length - nl - 1);
      peers.push(s.remoteAddress ?? "");
    }
    for (let j = at; j < d.length; j++) bad += d[j] !== pattern(got + j - at) ? 1 : 0;
    got += d.length - at;
    if (got < want) return;
    done = true;
    const out = Buffer.alloc(BYTES);
    for (let i = 0; i < BYTES; i++) out[i] = pattern(i);
    s.write(`pong ${s.remoteAddress} ${bad || got !== want ? "bad" : "ok"} ${got}\n`);
    s.end(out);
  });
  s.on("error", () => {});
}

/** Opens TAP `name` as the daemon does (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR). libc through bun:ffi here because the test
 *  host has no libbpf, which libonebox-net.so (src/sys/tap.ts) links. */
function openTap(name: string): number {
  const libc = dlopen("libc.so.6", { ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 } });
  const fd = openSync("/dev/net/tun", "r+");
  const ifr = new Uint8Array(40);
  ifr.set(new TextEncoder().encode(name));
  new DataView(ifr.buffer).setUint16(16, 0x0002 | 0x1000 | 0x4000, true); // IFF_TAP | IFF_NO_PI | IFF_VNET_HDR
  const TUNSETIFF = 0x400454ca;
  if (libc.symbols.ioctl(fd, TUNSETIFF, ptr(ifr)) < 0) throw new Error(`TUNSETIFF ${name} failed`);
  return fd;
}

function sh(cmd: string[]): void {
  const r = Bun.spawnSync(cmd);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
}

let vm: TestVm | null = null;
let tapFd = -1;
let clone: VmProcess | null = null;
afterAll(async () => {
  await vm?.dispose();
  await clone?.stop().catch(() => undefined);
  if (tapFd >= 0) closeSync(tapFd); // not persistent: the link goes with the last fd
});

/** A TAP named TAP with the gateway's address, up; the server on the gateway's port. */
async function gatewaySide(peers: string[]): Promise<{ fd: number; close(): void }> {
  Bun.spawnSync(["modprobe", "tun"]); // a module in Debian's cloud kernel
  const fd = openTap(TAP);
  sh(["ip", "addr", "add", `${GUEST_NET.gateway}/${GUEST_NET.prefixLen}`, "dev", TAP]);
  // The gateway's MAC, the same on every TAP as the daemon's slots have it: a clone's ARP entry stays right.
  sh(["ip", "link", "set", TAP, "address", GUEST_NET.gatewayMac]);
  sh(["ip", "link", "set", TAP, "up"]);
  const server = createServer((s) => serve(s, peers));
  await new Promise<void>((ok) => server.listen(PORT, GUEST_NET.gateway, ok));
  return { fd, close: () => server.close() };
}

const SUCCESS = `${ONEBOX_TEST_NET_PREFIX}pong ${GUEST_NET.ip} ok ${BYTES} rx=${BYTES} good`;

describe.skipIf(!IN_TESTHOST)("virtio-net with a Linux guest", () => {
  test("eth0 comes up from onebox.net= and moves 4 MiB each way; a clone restored onto another TAP does too", async () => {
    const first: string[] = [];
    let gw = await gatewaySide(first);
    tapFd = gw.fd;
    vm = await startTestVm({ test: "net", net: { tapFd, mac: GUEST_NET.mac }, cmdlineExtra: netCmdlineArg(GUEST_NET) });
    await vm.waitConsole(SUCCESS);
    expect(first[0]).toBe(GUEST_NET.ip);
    expect(vm.console()).toContain(`net: eth0 ${GUEST_NET.ip}/${GUEST_NET.prefixLen} via ${GUEST_NET.gateway}`);
    // The guest's MAC is the one the device was given (the host learnt it by ARP).
    expect(Bun.spawnSync(["ip", "neigh", "show", "dev", TAP]).stdout.toString()).toContain(GUEST_NET.mac);
    // Nothing dropped or refused by the device, no ring error.
    const stderr = join(vm.spec.runDir, "vmm.stderr");
    expect(existsSync(stderr) ? readFileSync(stderr, "utf8") : "").not.toContain("virtio-net");

    await vm.vm.pause();
    const snapDir = join(scratchRoot(), "net-snap");
    await vm.vm.snapshot(snapDir);
    await vm.vm.stop();
    // The source's TAP goes; a new one (as another slot's would be) takes the gateway side.
    gw.close();
    closeSync(tapFd);
    tapFd = -1;
    const peers: string[] = [];
    gw = await gatewaySide(peers);
    tapFd = gw.fd;
    try {
      const runDir = join(scratchRoot(), "net-clone");
      mkdirSync(runDir, { recursive: true });
      const spec: VmSpec = {
        ...vm.spec,
        id: `${vm.spec.id}-clone`,
        runDir,
        consolePath: join(runDir, "console.log"),
        exitFile: join(runDir, "exit.json"),
        restoreFrom: snapDir,
        vsock: { cid: 200, forwardPorts: [] },
        net: { tapFd, mac: "02:00:00:00:00:99" }, // ignored on restore: the snapshot's MAC stays
      };
      clone = await VmProcess.spawn(spec);
      const end = Date.now() + BOOT_TIMEOUT_MS;
      while (!(existsSync(spec.consolePath) && readFileSync(spec.consolePath, "utf8").includes(SUCCESS))) {
        if (Date.now() > end) throw new Error(`clone: no '${SUCCESS}'; console:\n${readFileSync(spec.consolePath, "utf8").slice(-2000)}`);
        await Bun.sleep(100);
      }
      expect(peers).toContain(GUEST_NET.ip);
      // The snapshot's MAC, not the one on the clone's command line.
      expect(Bun.spawnSync(["ip", "neigh", "show", "dev", TAP]).stdout.toString()).toContain(GUEST_NET.mac);
      await clone.stop();
    } finally {
      gw.close();
    }
  }, BOOT_TIMEOUT_MS * 3);
});
