// The sandbox lifecycle as data: states, allowed transitions, the actions (preconditions, the state while
// running, on success and on failure, and the 409 each refusal answers), and what the E2B API shows.
// The model: e2b-infra's sandboxtypes/states.go and handlers/sandbox_*.go.
import { SANDBOX_STATES, type EndReason, type SandboxState } from "../store/index.ts";
import { conflict } from "../util/errors.ts";

export const STATES = SANDBOX_STATES;
export type { SandboxState };

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

export function canTransition(from: SandboxState, to: SandboxState): boolean {
  return TRANSITIONS[from].includes(to);
}

function transitionRefused(id: string, from: SandboxState, to: SandboxState): string {
  return `sandbox ${id} is ${from} and cannot become ${to}; wait for the current operation to finish and retry`;
}

export function assertTransition(id: string, from: SandboxState, to: SandboxState): void {
  if (!canTransition(from, to)) throw conflict(transitionRefused(id, from, to));
}

/** Why a VM is ending when the daemon ends it, so its exit is not taken for a crash: the sandbox ends (kill),
 *  it is parked (pause to disk: its VM stops, the sandbox lives on), or the daemon detaches (VMs live on). */
export type VmEnding = { why: "end"; reason: EndReason } | { why: "park" } | { why: "detach" };

export type Op = "create" | "kill" | "pause" | "resume" | "connect" | "snapshot" | "fork";

export interface Action {
  /** The states it may start from; any other answers 409 with refusal(). */
  from: readonly SandboxState[];
  /** The state written while it runs (null: none, connect writes only through resume). */
  via: SandboxState | null;
  /** The state written when it succeeds. */
  to: SandboxState;
  /** The state written when it fails ("deleted": a failed create leaves no row; null: it cannot fail back). */
  onFail: SandboxState | "deleted" | null;
  /** What its VM's exit means while it runs (see VmEnding): "end" is written by begin(), "park" once the vCPUs
   *  are stopped and the snapshot is written. */
  ending?: "end" | "park";
  refusal(id: string, state: SandboxState): string;
}

/** The lifecycle operations as data (src/sandbox/{create,kill,pause,resume,connect,snapshot}.ts carry them out). */
export const ACTIONS: Record<Op, Action> = {
  create: { from: [], via: "starting", to: "running", onFail: "deleted", refusal: (id, s) => transitionRefused(id, s, "starting") },
  kill: {
    from: ["starting", "running", "pausing", "paused", "resuming"],
    via: "stopping",
    to: "ended",
    onFail: null,
    ending: "end",
    refusal: (id, s) => transitionRefused(id, s, "stopping"),
  },
  pause: {
    from: ["running"],
    via: "pausing",
    to: "paused",
    onFail: "running",
    ending: "park",
    refusal: (id, s) => (s === "paused" ? `sandbox ${id} is already paused` : transitionRefused(id, s, "pausing")),
  },
  resume: { from: ["paused"], via: "resuming", to: "running", onFail: "paused", refusal: (id, s) => `sandbox ${id} is ${s}, not paused` },
  /** Connect: a running sandbox's TTL grows, a paused one is resumed; an operation in flight is waited for first
   *  (connect.ts), so only a transitional state with none in flight is refused. */
  connect: { from: ["running", "paused"], via: null, to: "running", onFail: null, refusal: (id, s) => `sandbox ${id} is ${s}; retry the connect in a moment` },
  /** Snapshot (POST /sandboxes/{id}/snapshots): the VM is paused only while its state is captured and runs on
   *  after, success or failure, so the row stays running throughout (the op lock keeps other operations out). */
  snapshot: {
    from: ["running"],
    via: null,
    to: "running",
    onFail: null,
    refusal: (id, s) => `sandbox ${id} is ${s}; only a running sandbox can be snapshotted${s === "paused" ? ": resume it (connect) first" : ", retry in a moment"}`,
  },
  /** Fork (POST /sandboxes/{id}/fork): a snapshot's capture (the parent runs on), then creates from it. */
  fork: {
    from: ["running"],
    via: null,
    to: "running",
    onFail: null,
    refusal: (id, s) => `sandbox ${id} is ${s}; only a running sandbox can be forked${s === "paused" ? ": resume it (connect) first" : ", retry in a moment"}`,
  },
};

/** Throws the action's 409 unless it may start from `state`. */
export function precondition(op: Op, id: string, state: SandboxState): void {
  if (!ACTIONS[op].from.includes(state)) throw conflict(ACTIONS[op].refusal(id, state));
}

/** The E2B `state` field has only `running` and `paused` (spec §1.3 SandboxDetail). */
export function apiState(s: SandboxState): "running" | "paused" {
  return s === "paused" || s === "pausing" ? "paused" : "running";
}

/** Why a sandbox ended; recorded on the row and shown by `onebox sandbox ls --all`. */
export { END_REASONS } from "../store/index.ts";
export type { EndReason };
