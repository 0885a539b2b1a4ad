// The agent's mutable per-sandbox state, set by POST /init (e2b-protocol.md §3.4, §3.5).

export interface AgentState {
  /** Global env vars for every process (§3.2), replaced by each /init. */
  envVars: Record<string, string>;
  /** envd access token; undefined = no auth (§3.5). */
  accessToken: string | undefined;
  /** User for requests that name none (§3.5: built-in fallback is root). */
  defaultUser: string;
  /** Working directory for processes that name none (§3.2). */
  defaultWorkdir: string | undefined;
  /** Timestamp (ms) of the newest /init applied: older, retried requests change nothing (§3.4). */
  lastInitAt: number;
}

export function newAgentState(): AgentState {
  return { envVars: {}, accessToken: undefined, defaultUser: "root", defaultWorkdir: undefined, lastInitAt: 0 };
}
