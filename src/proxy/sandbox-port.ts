// What the data plane needs from the sandboxes, and nothing more: a running sandbox's route (resumed first if it
// is paused with autoResume), the tokens signed /files URLs are checked against, and a sandbox's port secrets.
import type { SecretsLookup } from "./access.ts";

export interface SandboxRoute {
  /** Aborted when the sandbox stops or pauses: its open streams end (spec §3.1). */
  signal: AbortSignal;
  /** The forward socket of guest TCP `port` (forwarded on first use when it is not one of the spawn's). */
  socket(port: number): Promise<string>;
}

export interface SandboxPort {
  /** null: unknown, ended or paused (without autoResume, or its resume failed): the edge's 502. */
  routeOrResume(id: string): Promise<SandboxRoute | null>;
  /** Running sandboxes with their envd tokens (spec §2.4 item 1). */
  runningTokens(): { id: string; token: string }[];
  /** Checked before any route, resume or forward slot (access.ts). */
  secrets: SecretsLookup;
}
