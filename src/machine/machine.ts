// The machine layer's two ports, passed together: the VMM driver (src/vmm) and the guest link (agent, hygiene).
import { agentGuest, type GuestLink } from "./guest-link.ts";
import type { VmDriver } from "./vm-driver.ts";

export interface Machine {
  driver: VmDriver;
  guest: GuestLink;
}

/** The real machine over a driver: the guest is reached through its agent and control channel. */
export function realMachine(driver: VmDriver): Machine {
  return { driver, guest: agentGuest };
}
