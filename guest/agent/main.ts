// Entry of the guest agent: starts the envd-compatible server (onebox-init runs it as root in every guest).
import { writeFileSync } from "node:fs";
import { ENVD_PORT } from "../protocol.ts";
import { startAgent } from "./server.ts";

function portFromArgs(argv: string[]): number {
  const i = argv.indexOf("--port");
  const raw = i >= 0 ? argv[i + 1] : process.env.ONEBOX_AGENT_PORT;
  if (raw === undefined) return ENVD_PORT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`invalid port '${raw}': pass --port 0..65535`);
  return n;
}

// A guest agent must outlive a bug in one request: log and keep serving.
process.on("uncaughtException", (e) => console.error("onebox-agent: uncaught exception:", e));
process.on("unhandledRejection", (e) => console.error("onebox-agent: unhandled rejection:", e));

// The agent is the sandbox's lifeline: the OOM killer should pick a user process instead
// (children are set back to 100 in process-manager.ts, as envd does).
try {
  writeFileSync("/proc/self/oom_score_adj", "-1000");
} catch {
  // not root or no /proc: run unprotected
}

const agent = startAgent({ port: portFromArgs(process.argv) });
console.log(`onebox-agent: listening on ${agent.server.hostname}:${agent.server.port}`);
