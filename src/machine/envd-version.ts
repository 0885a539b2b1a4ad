// The envd version this build's guest agent implements (guest/protocol.ts), reported as `envdVersion`
// so the SDK enables the matching features (spec §3.6 version gates).
import { ENVD_VERSION } from "../../guest/protocol.ts";

const SEMVER = /^\d+\.\d+\.\d+$/;

/** Null only if guest/protocol.ts ever carries something the SDK could not parse (then create refuses). */
export function agentEnvdVersion(): string | null {
  return SEMVER.test(ENVD_VERSION) ? ENVD_VERSION : null;
}
