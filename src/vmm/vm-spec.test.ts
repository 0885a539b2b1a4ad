// Tests the onebox-vmm command line built from a VmSpec (docs/architecture.md "Command line").
import { expect, test } from "bun:test";
import { forwardPath, vmmArgs } from "./vm-spec.ts";

test("cold boot arguments in the documented order", () => {
  const args = vmmArgs({
    id: "sbx",
    runDir: "/run/onebox/vms/sbx",
    consolePath: "/d/console.log",
    exitFile: "/d/exit.json",
    memMib: 512,
    vcpus: 2,
    kernel: "/k/vmlinuz",
    initrd: "/k/initrd",
    cmdline: "console=ttyS0 reboot=k panic=-1",
    disks: [
      { path: "/t/rootfs.ext4", readOnly: true },
      { path: "/d/layer.ext4", readOnly: false },
    ],
    rng: true,
    vsock: { cid: 7, forwardPorts: [49983, 49999] },
  });
  expect(args.join(" ")).toBe(
    "--ctl /run/onebox/vms/sbx/ctl.sock --console /d/console.log --exit-file /d/exit.json --mem-mib 512 --vcpus 2 " +
      "--kernel /k/vmlinuz --initrd /k/initrd --cmdline console=ttyS0 reboot=k panic=-1 " +
      "--disk /t/rootfs.ext4,ro --disk /d/layer.ext4 --rng --vsock /run/onebox/vms/sbx/vsock.sock --cid 7 " +
      "--forward 49983=/run/onebox/vms/sbx/vsock.sock.tcp-49983 --forward 49999=/run/onebox/vms/sbx/vsock.sock.tcp-49999",
  );
  expect(forwardPath("/run/onebox/vms/sbx", 49983)).toBe("/run/onebox/vms/sbx/vsock.sock.tcp-49983");
});

test("the console log cap goes right after --console when the spec sets one", () => {
  const args = vmmArgs({ id: "t", runDir: "/r", consolePath: "/d/c.log", consoleMaxBytes: 65536, exitFile: "/d/e.json", memMib: 32, vcpus: 1, kernel: "", cmdline: "", testGuest: "/g.bin", disks: [], rng: false });
  expect(args.slice(0, 8).join(" ")).toBe("--ctl /r/ctl.sock --console /d/c.log --console-max 65536 --exit-file /d/e.json");
});

test("a pooled vmm names its snapshot at start; a diff restore names its base from the daemon's record", () => {
  const base = { id: "p", runDir: "/r", consolePath: "/d/c", exitFile: "/d/e", memMib: 64, vcpus: 1, kernel: "/k", cmdline: "", disks: [], rng: false };
  expect(vmmArgs({ ...base, pooled: true, restoreFrom: "/t/snap/vm" }).join(" ")).toBe(
    "--ctl /r/ctl.sock --console /d/c --exit-file /d/e --mem-mib 64 --vcpus 1 --pool --restore /t/snap/vm",
  );
  expect(vmmArgs({ ...base, restoreFrom: "/d/paused", restoreBase: "/t/snap/vm" }).join(" ")).toBe(
    "--ctl /r/ctl.sock --console /d/c --exit-file /d/e --mem-mib 64 --vcpus 1 --restore /d/paused --restore-base /t/snap/vm",
  );
});
