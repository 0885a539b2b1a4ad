// What every lifecycle operation works with: the registry, the store's templates, the config, the machine layer
// (null when no VMM can run here, with the reason), the starter, and the per-sandbox attachments of a create.
import type { GuestLink } from "../machine/guest-link.ts";
import type { Machine } from "../machine/machine.ts";
import type { TemplateRow, TemplateStore } from "../store/index.ts";
import type { CleanupStack } from "../util/cleanup-stack.ts";
import type { Config } from "../util/config.ts";
import type { SandboxRegistry } from "./registry.ts";
import type { SandboxStarter } from "./starter.ts";
import type { DaemonMetrics } from "../metrics/daemon-metrics.ts";

/** One create's scope for its attachments: what they attach to, and the stack their undo goes on. */
export interface CreateScope {
  id: string;
  template: TemplateRow;
  undo: CleanupStack;
}

/** A per-sandbox resource a create acquires before the VM boots (e.g. a network slot), in order; it pushes its
 *  own undo on scope.undo, which runs if any later step of the create fails. */
export interface Attachment {
  name: string;
  acquire(scope: CreateScope): void | Promise<void>;
}

export interface SandboxCtx {
  reg: SandboxRegistry;
  templates: TemplateStore;
  config: Config;
  machine: Machine | null;
  /** The guest link on its own: a live VM's guest is reached even without a VMM driver (metrics, re-init). */
  guest: GuestLink;
  /** Why machine is null (no VMM here). */
  machineProblem: string | null;
  starter: SandboxStarter | null;
  /** Why this host cannot boot sandboxes right now (src/sandbox/host-check.ts), or null. */
  hostProblem: () => string | null;
  attachments: readonly Attachment[];
  /** The daemon's Prometheus metrics (GET /metrics): the create path counts what it did. */
  metrics: DaemonMetrics;
}
