// A sandbox's egress policy as its row stores it (E2B's network.allowOut/denyOut and allow_internet_access),
// compiled for its network slot, and written into the slot its live vmm holds (docs/network.md "Egress policy").
import { compilePolicyCached, type CompiledPolicy } from "../net/policy.ts";
import type { SandboxRow } from "../store/index.ts";
import { log } from "../util/log.ts";
import type { SandboxCtx } from "./context.ts";

/** Deny everything: what a stored policy that no longer compiles falls back to (fail closed, never open). */
const DENY_ALL: CompiledPolicy = { allow: [], deny: [{ base: 0, prefix: 0, size: 2 ** 32 }], domains: [] };

/** The compiled policy of a row (validated when it was stored; a row that no longer compiles denies all). */
export function egressOf(row: Pick<SandboxRow, "id" | "network" | "allowInternetAccess">): CompiledPolicy {
  try {
    const n = row.network ? (JSON.parse(row.network) as { allowOut?: string[]; denyOut?: string[] }) : {};
    return compilePolicyCached({ allowOut: n.allowOut, denyOut: n.denyOut, allowInternetAccess: row.allowInternetAccess ?? undefined });
  } catch (e) {
    log.warn("a sandbox's stored network policy does not compile; denying all its egress", { id: row.id, error: String(e) });
    return DENY_ALL;
  }
}

/**
 * Writes the row's current policy into the slot of the sandbox's live vmm (none: nothing to do; a paused sandbox
 * gets it at resume). Called after every start (create, resume, re-adoption) and by PUT /network. Synchronous with
 * the row read, so a PUT that lands while a start runs is either seen here or finds the live vmm itself.
 */
export function applyEgress(ctx: SandboxCtx, id: string): void {
  const row = ctx.reg.get(id);
  const live = ctx.reg.live.get(id);
  if (!row || !live) return;
  ctx.machine?.net?.leaseOf(live.handle)?.setPolicy(egressOf(row));
}
