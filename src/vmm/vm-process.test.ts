// Runs onebox-vmm with the tiny test guests (ffi/tests/guests) on this host's /dev/kvm through VmProcess.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VmProcess, vmmDirFor } from "./vm-process.ts";
import { forwardPath, type VmSpec } from "./vm-spec.ts";
import { TEST_GUESTS_DIR, haveTestGuest, testGuestSpec } from "./test-guest.ts";

const guests = TEST_GUESTS_DIR;
const haveKvm = haveTestGuest("poweroff.bin");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function spec(guest: string, extra: Partial<VmSpec> = {}): VmSpec {
  const runDir = mkdtempSync(join(tmpdir(), "vmm-test-"));
  dirs.push(runDir);
  return testGuestSpec(runDir, `${guest}.bin`, { memMib: 64, ...extra });
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");

describe.skipIf(!haveKvm)("onebox-vmm test guests", () => {
  test("power-off port ends the VM with reason poweroff, exit record written", async () => {
    const s = spec("poweroff");
    const vm = await VmProcess.spawn(s).catch(async (e) => {
      throw e;
    });
    const exit = await vm.exited;
    expect(exit.reason).toBe("poweroff");
    expect(JSON.parse(read(s.exitFile)).reason).toBe("poweroff");
  });

  test("PIO: guest output on COM1 reaches the console log and the exit record's tail", async () => {
    const s = spec("hello");
    const vm = await VmProcess.spawn(s);
    const exit = await vm.exited;
    expect(exit.reason).toBe("poweroff");
    expect(read(s.consolePath)).toBe("hello from the test guest\nsecond line\n");
    expect(exit.consoleTail).toContain("second line");
  });

  test("MMIO: unmapped reads give all ones; the virtio-rng window answers with its registers", async () => {
    const s = spec("mmio", { rng: true });
    const exit = await (await VmProcess.spawn(s)).exited;
    expect(exit.reason).toBe("poweroff");
    expect(read(s.consolePath)).toContain("unmapped=ffffffff magic=74726976 version=00000002 device=00000004");
  });

  test("malformed ring: the device needs reset, the vmm stays up and says so on stderr", async () => {
    const s = spec("bad_ring", { rng: true });
    const vm = await VmProcess.spawn(s);
    await waitFor(() => read(s.consolePath).includes("virtio status="));
    const status = Number.parseInt(read(s.consolePath).split("virtio status=")[1]?.slice(0, 8) ?? "0", 16);
    expect(status & 0x40).toBe(0x40); // DEVICE_NEEDS_RESET (virtio 1.2, 2.1)
    expect(read(join(s.runDir, "vmm.stderr"))).toContain("needs reset");
    expect((await vm.ping()).state).toBe("running");
    const stats = await vm.stats();
    expect(stats.pssKib).toBeGreaterThan(0);
    await vm.pause();
    expect((await vm.ping()).state).toBe("paused");
    await vm.resume();
    await vm.stop();
    const exit = await vm.exited;
    expect(exit.reason).toBe("stopped");
  });

  test("SIGKILL of the vmm: exited resolves with vmm-crash and the signal", async () => {
    const s = spec("bad_ring", { rng: true });
    const vm = await VmProcess.spawn(s);
    process.kill(vm.pid, "SIGKILL");
    const exit = await vm.exited;
    expect(exit.reason).toBe("vmm-crash");
    expect(exit.signal).toBe("SIGKILL");
  });

  test("triple fault: reason panic with the console tail", async () => {
    const s = spec("triple_fault");
    const exit = await (await VmProcess.spawn(s)).exited;
    expect(exit.reason).toBe("panic");
    expect(exit.detail).toContain("triple fault");
    expect(exit.consoleTail).toContain("about to triple fault");
  });

  test("panic line on the console and no reset afterwards: still ended as a panic (never hangs)", async () => {
    const s = spec("panic_hang");
    const started = Date.now();
    const exit = await (await VmProcess.spawn(s)).exited;
    expect(exit.reason).toBe("panic");
    expect(exit.detail).toContain("no reset followed");
    expect(exit.consoleTail).toContain("Kernel panic - not syncing: test guest gives up");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test("i8042 reset pulse: reason reboot, exit status 1", async () => {
    const s = spec("reboot");
    const exit = await (await VmProcess.spawn(s)).exited;
    expect(exit.reason).toBe("reboot");
  });

  test("two vCPUs: the AP waits for SIPI; pause, resume and power-off still work", async () => {
    const s = spec("bad_ring", { vcpus: 2, rng: true });
    const vm = await VmProcess.spawn(s);
    await vm.pause();
    expect((await vm.ping()).state).toBe("paused");
    await vm.resume();
    await vm.stop();
    expect((await vm.exited).reason).toBe("stopped");
  });

  test("control protocol: forward needs vsock, forward with vsock makes the socket, overlong lines are refused", async () => {
    const s = spec("bad_ring", { vsock: { cid: 3, forwardPorts: [] } });
    const vm = await VmProcess.spawn(s);
    const path = await vm.forward(8080);
    // An fd of the socket the vmm bound in its own dir (it cannot bind in the root-owned run dir after the drop).
    const file = join(vmmDirFor(s.exitFile), "tcp-8080");
    expect(path).toMatch(/^\/proc\/self\/fd\/\d+$/);
    expect(statSync(path).ino).toBe(statSync(file).ino);
    await expect(vm.forward(0)).rejects.toThrow(/port must be/);
    // A raw client: an overlong line gets an error and the connection is closed; the vmm carries on.
    const reply = await new Promise<string>((resolve) => {
      const sock = createConnection({ path: join(s.runDir, "ctl.sock") });
      let got = "";
      sock.on("data", (d) => (got += d.toString()));
      sock.on("close", () => resolve(got));
      sock.on("connect", () => sock.write(`${"x".repeat(5000)}\n`));
    });
    expect(reply).toContain("err line longer than 4096");
    expect((await vm.ping()).pid).toBe(vm.pid);
    await vm.stop();
    // The socket files are removed once the vmm is gone (a jailed one cannot unlink in the run dir); records stay.
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(s.runDir, "vsock.sock"))).toBe(false);
    expect(existsSync(join(s.runDir, "ctl.sock"))).toBe(false);
    expect(existsSync(s.exitFile)).toBe(true);
  });

  test("boot forward sockets are bound where the daemon names them (--forward PORT=SOCKET); a bare port is refused", async () => {
    const s = spec("bad_ring", { vsock: { cid: 3, forwardPorts: [8081] } });
    const vm = await VmProcess.spawn(s);
    expect(statSync(forwardPath(s.runDir, 8081)).isSocket()).toBe(true);
    await vm.stop();
    // The vmm derives no socket name from --vsock: a forward without its socket is a setup error that says so.
    const runDir = mkdtempSync(join(tmpdir(), "vmm-test-"));
    dirs.push(runDir);
    const r = Bun.spawnSync([join(import.meta.dir, "../../ffi/build/onebox-vmm"), "--ctl", join(runDir, "ctl.sock"),
      "--exit-file", join(runDir, "exit.json"), "--test-guest", join(guests, "bad_ring.bin"), "--vsock",
      join(runDir, "vsock.sock"), "--cid", "3", "--forward", "8081", "--no-seccomp"], { timeout: 5000 });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toContain("--forward takes PORT=PATH");
    expect(existsSync(`${join(runDir, "vsock.sock")}.tcp-8081`)).toBe(false);
  });

  test("adopt: a second client re-attaches to a running vmm and stops it", async () => {
    const s = spec("bad_ring", { rng: true });
    const vm = await VmProcess.spawn(s);
    vm.detach();
    const again = await VmProcess.adopt(s.runDir, s.exitFile);
    expect(again?.pid).toBe(vm.pid);
    await again?.stop();
    expect((await vm.exited).reason).toBe("stopped");
    expect((await again?.exited)?.reason).toBe("stopped");
    expect(await VmProcess.adopt(s.runDir, s.exitFile)).toBeNull();
  });

  test("ELF vmlinux boot path: PT_LOAD at its physical address, boot_params with cmdline, e820 and RSDP", async () => {
    const s = spec("bootparams", { rng: true });
    const elf = join(s.runDir, "vmlinux");
    // -N: one segment at exactly 0x100000 with no file headers in it, like a kernel's PT_LOAD at its LMA.
    const ld = Bun.spawnSync(["ld", "-N", "-Ttext=0x100000", "-e", "0x100000", "-o", elf, join(guests, "bootparams.o")]);
    expect(ld.exitCode).toBe(0);
    const exit = await (await VmProcess.spawn({ ...s, testGuest: undefined, kernel: elf, cmdline: "console=ttyS0 x=1" }))
      .exited;
    expect(exit.reason).toBe("poweroff");
    expect(read(s.consolePath)).toBe(
      "cmdline=console=ttyS0 x=1 virtio_mmio.device=4K@0xd0000000:5\ne820=00000003 rsdp=000e0000\n",
    );
  });

  test("bzImage boot path: setup header parsed, 64-bit entry at protected-mode kernel + 0x200", async () => {
    const s = spec("bootparams");
    // A minimal bzImage (Documentation/x86/boot.rst): boot sector + 1 setup sector, then the protected-mode
    // kernel whose 64-bit entry (startup_64) is at offset 0x200: here, the test guest's code.
    const code = readFileSync(join(guests, "bootparams.bin"));
    const setupSects = 1;
    const pm = (setupSects + 1) * 512;
    const img = Buffer.alloc(pm + 0x200 + code.length);
    img[0x1f1] = setupSects;
    img.writeUInt16LE(0xaa55, 0x1fe); // boot_flag
    img[0x200] = 0xeb; // jump over the header; its offset byte gives the header's length
    img[0x201] = 0x6a;
    img.writeUInt32LE(0x53726448, 0x202); // "HdrS"
    img.writeUInt16LE(0x020f, 0x206); // protocol 2.15
    img.writeUInt32LE(0x7fffffff, 0x22c); // initrd_addr_max
    img.writeUInt16LE(1, 0x236); // xloadflags: XLF_KERNEL_64
    img.writeUInt32LE(2048, 0x238); // cmdline_size
    code.copy(img, pm + 0x200);
    const bz = join(s.runDir, "bzImage");
    await Bun.write(bz, img);
    const exit = await (await VmProcess.spawn({ ...s, testGuest: undefined, kernel: bz, cmdline: "console=ttyS0 bz=1" }))
      .exited;
    expect(exit.reason).toBe("poweroff");
    expect(read(s.consolePath)).toBe("cmdline=console=ttyS0 bz=1\ne820=00000003 rsdp=000e0000\n");
  });

  test("a setup failure is reported with what to fix", async () => {
    const s = spec("poweroff", { disks: [{ path: "/nonexistent/disk.img", readOnly: true }] });
    await expect(VmProcess.spawn(s)).rejects.toThrow(/exited during start: error/);
    expect(JSON.parse(read(s.exitFile)).detail).toContain("/nonexistent/disk.img");
  });
});
