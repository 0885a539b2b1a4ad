// Identifiers and secrets: sandbox ids, API keys, access tokens, and their hashes.
import { createHash, randomBytes } from "node:crypto";

const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Sandbox ids are `^[a-z0-9]+$`, 20 characters like E2B's: no `-` or `.` (spec §2.3, Host routing). */
export function newSandboxId(length = 20): string {
  const bytes = randomBytes(length);
  let out = "";
  // 252 = 7 * 36: rejecting bytes above it keeps the distribution uniform.
  for (let i = 0; out.length < length; i++) {
    if (i >= bytes.length) return out + newSandboxId(length - out.length);
    const b = bytes[i]!;
    if (b < 252) out += ID_ALPHABET[b % 36];
  }
  return out;
}

export const SANDBOX_ID_RE = /^[a-z0-9]{1,64}$/;

/** API keys are `e2b_` + 40 hex (160 random bits): old SDKs check `^e2b_[0-9a-f]+$` (spec §0). */
export function newApiKey(): string {
  return "e2b_" + randomBytes(20).toString("hex");
}

/** Random token for envd's X-Access-Token (spec §3.5), URL-safe. */
export function newAccessToken(): string {
  return randomBytes(24).toString("base64url");
}

/** sha256 is enough for keys with 160 random bits: no dictionary to guess from. */
export function sha256Hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

export function newTemplateId(): string {
  return newSandboxId(20);
}
