// e2e: a Debian guest under onebox-vmm with virtio-net on a TAP of the test host (no eBPF, no slot pool: the device
// and onebox-init's network alone). The host side of the TAP plays the gateway; the guest's `net` test mode connects
// to it over TCP through eth0 configured from onebox.net= (docs/guest.md "Network"). Traffic stays in the test host.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { netCmdlineArg, ONEBOX_TEST_NET_PREFIX } from "../../guest/protocol.ts";
import { GUEST_NET } from "../../src/net/addresses.ts";
import { BOOT_TIMEOUT_MS, IN_TESTHOST, startTestVm, type TestVm } from "./lib/harness.ts";

const TAP = "obxe2e0";
const PORT = 5000;

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
afterAll(async () => {
  await vm?.dispose();
  if (tapFd >= 0) closeSync(tapFd); // not persistent: the link goes with the last fd
});

describe.skipIf(!IN_TESTHOST)("virtio-net with a Linux guest", () => {
  test("eth0 comes up from onebox.net= and reaches the gateway over TCP through the TAP", async () => {
    Bun.spawnSync(["modprobe", "tun"]); // a module in Debian's cloud kernel
    tapFd = openTap(TAP);
    sh(["ip", "addr", "add", `${GUEST_NET.gateway}/${GUEST_NET.prefixLen}`, "dev", TAP]);
    sh(["ip", "link", "set", TAP, "up"]);
    const peers: string[] = [];
    const server = Bun.listen({
      hostname: GUEST_NET.gateway,
      port: PORT,
      socket: {
        data(s, d) {
          if (!d.toString().includes("onebox-net-test")) return;
          peers.push(s.remoteAddress);
          s.write(`pong ${s.remoteAddress}\n`);
        },
      },
    });
    try {
      vm = await startTestVm({ test: "net", net: { tapFd, mac: GUEST_NET.mac }, cmdlineExtra: netCmdlineArg(GUEST_NET) });
      await vm.waitConsole(`${ONEBOX_TEST_NET_PREFIX}pong ${GUEST_NET.ip}`);
      expect((await vm.vm.exited).reason).toBe("poweroff");
      expect(peers).toEqual([GUEST_NET.ip]);
      expect(vm.console()).toContain(`net: eth0 ${GUEST_NET.ip}/${GUEST_NET.prefixLen} via ${GUEST_NET.gateway}`);
      // The guest's MAC is the one the device was given (the host learnt it by ARP).
      const neigh = Bun.spawnSync(["ip", "neigh", "show", "dev", TAP]).stdout.toString();
      expect(neigh).toContain(GUEST_NET.mac);
    } finally {
      server.stop(true);
    }
  }, BOOT_TIMEOUT_MS * 2);
});
