// The envd version this build's guest agent implements, from guest/protocol.ts (spec §3.6 gates).
// The agent engineer exports ENVD_VERSION there; read through the namespace so this file builds
// before that export lands. Until then templates record "unknown" and create refuses them (503).
import * as protocol from "../../guest/protocol.ts";

const SEMVER = /^\d+\.\d+\.\d+$/;

export function agentEnvdVersion(): string | null {
  const v = (protocol as Record<string, unknown>).ENVD_VERSION;
  return typeof v === "string" && SEMVER.test(v) ? v : null;
}
