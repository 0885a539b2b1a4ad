// Scenario (run by src/net/pool.test.ts in its own namespaces): a pool's slots are made, used by a "VMM" holding the
// TAP fd, released and stopped; prints what existed at each step and what was left.
import { join } from "node:path";
import { HostNet } from "../host-net.ts";
import { SlotPool } from "../pool.ts";
import { leftovers, progExists, sh, tcProgIds } from "./run-in-netns.ts";

const work = process.argv[2]!;
sh("ip link set lo up");
const bpffs = join(work, "bpffs");
sh(`mkdir -p ${bpffs}`);
const stateDir = join(work, "state");

const before = leftovers(bpffs);
const host = await HostNet.start({ sandboxCidr: "198.18.0.0/24", bpffsRoot: bpffs, stateDir });
const pool = new SlotPool(host, { size: 2 });
await pool.start();
await pool.whenFilled();
const running = leftovers(bpffs);

const slot = await pool.acquire();
const progIds = tcProgIds(slot.tapName);
const attached = { tap: slot.tapName, ip: slot.slotIp, fd: slot.fd, progIds, progsAlive: progIds.map(progExists) };
// A "VMM" holding a dup of the TAP fd, as the real one will (Bun.spawn stdio).
const vmm = Bun.spawn(["sleep", "30"], { stdio: ["ignore", "ignore", "ignore", slot.fd!] });
await Bun.sleep(50);
await pool.release(slot);
const afterRelease = { tapGone: !sh("ip -o link show").includes(`${slot.tapName}:`), vmmStillRunning: vmm.exitCode === null };
vmm.kill();
await pool.whenFilled();
const refilled = pool.stats();

await pool.stop();
const errors = await host.stop({ final: true });
// Programs are freed after an RCU grace period: wait for it (bounded) rather than guess its length.
for (let t = 0; t < 100 && progIds.some(progExists); t++) await Bun.sleep(20);
const after = leftovers(bpffs);
console.log(
  JSON.stringify({ before, running, attached, afterRelease, refilled, after, progsAliveAfter: progIds.map(progExists), stopErrors: errors.map((e) => e.message) }),
);
