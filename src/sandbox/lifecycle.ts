// The sandbox lifecycle as data: states, allowed transitions, and what the E2B API shows for each.
import { conflict } from "../util/errors.ts";

export const STATES = ["starting", "running", "pausing", "paused", "resuming", "stopping", "ended"] as const;
export type SandboxState = (typeof STATES)[number];

/** Allowed transitions. Anything not listed is refused. `ended` is terminal: a row stays
 *  in the database with its end reason but the API answers 404 for it (spec §1.3). */
export const TRANSITIONS: Record<SandboxState, readonly SandboxState[]> = {
  starting: ["running", "stopping", "ended"],
  running: ["pausing", "stopping", "ended"],
  pausing: ["paused", "running", "stopping", "ended"],
  paused: ["resuming", "stopping", "ended"],
  resuming: ["running", "paused", "stopping", "ended"],
  stopping: ["ended"],
  ended: [],
};

/** States in which the sandbox exists for the E2B API (everything else answers 404). */
export const VISIBLE_STATES: readonly SandboxState[] = ["starting", "running", "pausing", "paused", "resuming", "stopping"];

/** States whose operation is still in flight: a second operation gets 409 (spec §1.3 connect/pause). */
export const TRANSITIONAL_STATES: readonly SandboxState[] = ["starting", "pausing", "resuming", "stopping"];

export function isState(s: string): s is SandboxState {
  return (STATES as readonly string[]).includes(s);
}

export function canTransition(from: SandboxState, to: SandboxState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(id: string, from: SandboxState, to: SandboxState): void {
  if (!canTransition(from, to)) {
    throw conflict(`sandbox ${id} is ${from} and cannot become ${to}; wait for the current operation to finish and retry`);
  }
}

/** The E2B `state` field has only `running` and `paused` (spec §1.3 SandboxDetail). */
export function apiState(s: SandboxState): "running" | "paused" {
  return s === "paused" || s === "pausing" ? "paused" : "running";
}

/** Why a sandbox ended; recorded on the row and shown by `onebox sandbox ls --all`. */
export const END_REASONS = [
  "timeout",
  "killed",
  "poweroff",
  "reboot",
  "panic",
  "vmm-crash",
  "vmm-error",
  "oom",
  "start-failed",
  "lost",
] as const;
export type EndReason = (typeof END_REASONS)[number];
