// The machine layer's ports, passed together: the VMM driver (src/vmm), the guest link (agent, hygiene) and the
// network slots (src/net) every VM gets.
import { agentGuest, type GuestLink } from "./guest-link.ts";
import type { NetSlots } from "./net-slots.ts";
import type { VmDriver } from "./vm-driver.ts";

export interface Machine {
  driver: VmDriver;
  guest: GuestLink;
  /** Network slots for every VM spawned (null: no guest networking on this host or `--no-network`). */
  net: NetSlots | null;
}

/** The real machine over a driver: the guest is reached through its agent and control channel. */
export function realMachine(driver: VmDriver, net: NetSlots | null = null): Machine {
  return { driver, guest: agentGuest, net };
}
