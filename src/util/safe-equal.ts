// Constant-time comparison of secrets (tokens, signatures): compares equal-length SHA-256 digests.
import { createHash, timingSafeEqual } from "node:crypto";

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** True when `given` equals `expected`, in time that does not depend on where they differ or on
 *  their lengths (hashing first makes both sides 32 bytes, as timingSafeEqual requires). */
export function safeEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}
