// A VM from spawn to a guest that answers: spawn the vmm (boot or restore), then the bring-up of its guest
// (after a restore one /init carrying the clone's hygiene; after a boot readiness, then /init), with where the time
// went by stage.
import type { CompiledPolicy } from "../net/policy.ts";
import type { TemplateRow } from "../store/index.ts";
import type { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import { unavailable } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { tailFile } from "../util/tail-file.ts";
import type { AgentInit } from "./agent-client.ts";
import type { GuestLink } from "./guest-link.ts";
import { initHygiene } from "./hygiene.ts";
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

/** A started VM's guest. A cold boot: wait until it is ready, then send /init. A restore: one exchange, the agent's
 *  /init carrying the clone's hygiene (clock, entropy, identity) with its token and env vars; the agent applies both
 *  and answers once (issue 18). No readiness probe after a restore: a snapshot is only ever taken of a ready guest (a
 *  template's once its agent and ready port answered, src/templates/snapshot.ts; a pause's, snapshot's or fork's of
 *  a running sandbox), so the restored guest is ready by construction, and the vmm holds the first connections until
 *  its vsock transport reset is handled (docs/virtio.md). An agent older than hygiene in /init (a template image
 *  built before it) ignores the field and says so by not confirming it: the hygiene then goes over onebox-init's
 *  control channel, right after. The data plane opens only after both. */
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
  // A VM that died meanwhile explains an exchange that found no socket better than the socket error.
  const explain = (e: unknown, what: string): never => {
    const death = dead();
    if (death) throw unavailable(`the sandbox VM exited while starting (${death})`);
    throw what ? unavailable(`${what} (${e instanceof Error ? e.message : String(e)})`) : e;
  };
  if (place.restoreFrom) {
    // The identity comes from hygiene, not the kernel command line, which is the template VM's.
    const hygiene = initHygiene({ id: place.id, hostname: place.id });
    // spec §3.6 / §6 item 12: default user "user"; the token is enforced by the agent from here on.
    const applied = await guest
      .init(place.runDir, s.init, s.tokenHeader, { hygiene, timeoutMs: initTimeoutMs(config) })
      .catch((e: unknown) => explain(e, "the restored guest did not take its clock, entropy and identity with its /init"));
    stage(stages, "init", t0);
    if (applied) return;
    const t1 = performance.now();
    await guest.hygiene(place.runDir, place.id, config.bootTimeoutMs).catch((e: unknown) =>
      explain(e, "the restored guest did not take its clock, entropy and identity"),
    );
    stage(stages, "hygiene", t1);
    return;
  }
  await guest.waitReady(config, t, handle, place.runDir, dead);
  const t1 = stage(stages, "ready", t0);
  await guest.init(place.runDir, s.init, s.tokenHeader, { timeoutMs: initTimeoutMs(config) }).catch((e: unknown) => explain(e, ""));
  stage(stages, "init", t1);
}

/** How long a start's /init may take: the boot timeout, and never less than the 150 s its fifty 3 s tries had. */
const initTimeoutMs = (config: Config): number => Math.max(150_000, config.bootTimeoutMs);

/** Unwinds a failed start's undo stack, logging the console's end first (the undo may remove it). */
export async function unwindLogged(id: string, undo: CleanupStack, console: string): Promise<void> {
  const tail = tailFile(console, 4096);
  if (tail) log.warn("console of the failed start", { id, tail });
  for (const err of await undo.unwind()) log.warn("cleanup after failed start", { id, error: err.message });
}
