// Guest networking for the daemon (docs/network.md "Wiring"): the Network started when the config and the host allow
// it, else null with one warning (sandboxes then run without a network).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { networkSlots, type NetSlots } from "./net-slots.ts";
import { Network } from "../net/network.ts";
import type { Config } from "../util/config.ts";
import { log } from "../util/log.ts";

export interface DaemonNetwork {
  network: Network;
  slots: NetSlots;
}

/** Why this host cannot have guest networking, checked before anything is set up. */
function networkProblem(): string | null {
  if (process.getuid?.() !== 0) return "the daemon does not run as root";
  if (!existsSync("/dev/net/tun")) return "no /dev/net/tun (load the tun module)";
  return null;
}

export async function startNetwork(config: Config): Promise<DaemonNetwork | null> {
  if (!config.network) return null;
  const problem = networkProblem();
  try {
    if (problem) throw new Error(problem);
    const network = await Network.start({
      sandboxCidr: config.sandboxCidr,
      slotPoolSize: config.netSlotPoolSize,
      stateDir: join(config.runRoot, "net"),
      openRanges: config.netAllowPrivate,
    });
    return { network, slots: networkSlots(network) };
  } catch (e) {
    log.warn("guest networking is off: sandboxes have no network (run `onebox doctor`)", { problem: e instanceof Error ? e.message : String(e) });
    return null;
  }
}

/** Daemon stop: running sandboxes outlive it, so their slots and the host setup stay for the next daemon ("restart"
 *  mode); only the ready slots go. */
export async function stopNetwork(net: DaemonNetwork): Promise<void> {
  await net.slots.detach();
  for (const e of await net.network.stop({ final: false })) log.warn("network stop", { error: e.message });
}
