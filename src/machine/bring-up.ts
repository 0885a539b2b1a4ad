// A VM from spawn to a guest that answers: spawn the vmm (boot or restore), then the bring-up of its guest
// (hygiene after a restore, readiness, /init), with where the time went by stage.
import type { CompiledPolicy } from "../net/policy.ts";
import type { TemplateRow } from "../store/index.ts";
import type { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import { unavailable } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { tailFile } from "../util/tail-file.ts";
import type { AgentInit } from "./agent-client.ts";
import type { GuestLink } from "./guest-link.ts";
import type { Machine } from "./machine.ts";
import { withSlot } from "./net-slots.ts";
import { deathWatch, spawnVm, vmSpecFor, type VmPlace } from "./vm-config.ts";
import type { VmHandle } from "./vm-driver.ts";

export type Stages = Record<string, number>;

/** Adds the ms since `since` to stages[name]; returns now, for the next stage. */
export function stage(stages: Stages, name: string, since: number): number {
  const now = performance.now();
  stages[name] = Math.round((now - since) * 100) / 100;
  return now;
}

/** Raised when the vmm refused to restore a snapshot (corrupt, another host kind, another vmm): the
 *  caller may drop that snapshot and cold-boot instead. */
export class RestoreRefused extends Error {}

export interface GuestStart {
  place: VmPlace;
  init: AgentInit;
  /** The token the agent already holds (a resumed sandbox's); a fresh guest holds none. */
  tokenHeader?: string;
  undo: CleanupStack;
  /** The sandbox's egress policy for its slot (none: a template VM's, left open as a new slot is). */
  egress?: CompiledPolicy;
}

/** Spawns the VM at place (restore or cold boot), then brings its guest up (bringUp). Registers the VM's
 *  undo on s.undo. */
export async function startGuest(config: Config, m: Machine, t: TemplateRow, s: GuestStart, stages: Stages): Promise<VmHandle> {
  const { place } = s;
  const t0 = performance.now();
  // A slot that cannot be had is no refused snapshot: only the spawn's failure is.
  const handle = await withSlot(m.net, (net) =>
    spawnVm(m.driver.spawn, vmSpecFor(config, t, { ...place, net })).catch((e: unknown) => {
      throw place.restoreFrom ? new RestoreRefused(e instanceof Error ? e.message : String(e)) : e;
    }),
    s.egress,
  );
  s.undo.push("vm process", () => stopAndWait(handle));
  stage(stages, "vmm", t0);
  await bringUp(config, m.guest, t, handle, s, stages);
  return handle;
}

/** Stops a VM and waits (bounded) for its process to be gone. */
export async function stopAndWait(handle: VmHandle): Promise<void> {
  await handle.stop().catch(() => undefined);
  await Promise.race([handle.exited, Bun.sleep(5000)]);
}

/** A started VM's guest. A cold boot: wait until it is ready, then send /init. A restore: its clone hygiene
 *  (clock, entropy, identity: onebox-init's control channel) and /init (the agent) go out at once and the start
 *  waits for both, one round trip instead of three in series (issue 18). No readiness probe after a restore: a
 *  snapshot is only ever taken of a ready guest (a template's once its agent and ready port answered,
 *  src/templates/snapshot.ts; a pause's, snapshot's or fork's of a running sandbox), so the restored guest is
 *  ready by construction, and the vmm holds the first connections until its vsock transport reset is handled
 *  (docs/virtio.md). Neither message depends on the other: /init sets the agent's env vars and token, hygiene the
 *  kernel's clock, CRNG and names; the data plane opens only after both. */
export async function bringUp(
  config: Config,
  guest: GuestLink,
  t: TemplateRow,
  handle: VmHandle,
  s: Omit<GuestStart, "undo">,
  stages: Stages,
): Promise<void> {
  const { place } = s;
  const dead = deathWatch(handle);
  const t0 = performance.now();
  // spec §3.5 / §6 item 12: default user "user"; the token is enforced by the agent from here on.
  const init = (since: number) =>
    guest.init(place.runDir, s.init, s.tokenHeader).then(
      () => void stage(stages, "init", since),
      (e: unknown) => {
        // A VM that died meanwhile explains an /init that found no socket better than the socket error.
        const death = dead();
        throw death ? unavailable(`the sandbox VM exited while starting (${death})`) : e;
      },
    );
  if (place.restoreFrom) {
    // The identity comes from hygiene, not the kernel command line, which is the template VM's.
    const hygiene = guest.hygiene(place.runDir, place.id, config.bootTimeoutMs).then(
      () => void stage(stages, "hygiene", t0),
      (e: unknown) => {
        throw unavailable(`the restored guest did not take its clock, entropy and identity (${e instanceof Error ? e.message : String(e)})`);
      },
    );
    // allSettled first: a failure must not leave the other exchange running against a VM being torn down.
    const [h, i] = await Promise.allSettled([hygiene, init(t0)]);
    if (h.status === "rejected") throw h.reason;
    if (i.status === "rejected") throw i.reason;
    return;
  }
  await guest.waitReady(config, t, handle, place.runDir, dead);
  await init(stage(stages, "ready", t0));
}

/** Unwinds a failed start's undo stack, logging the console's end first (the undo may remove it). */
export async function unwindLogged(id: string, undo: CleanupStack, console: string): Promise<void> {
  const tail = tailFile(console, 4096);
  if (tail) log.warn("console of the failed start", { id, tail });
  for (const err of await undo.unwind()) log.warn("cleanup after failed start", { id, error: err.message });
}
