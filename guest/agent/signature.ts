// Signed file URLs and access-token checks for GET/POST /files (e2b-protocol.md §3.5).
import { createHash, timingSafeEqual } from "node:crypto";

export type FileOp = "read" | "write";

/** "v1_" + base64(sha256(path:op:user:token[:exp])) without trailing "=" (§3.5). */
export function fileSignature(path: string, op: FileOp, user: string, token: string, exp?: number): string {
  const raw = exp === undefined ? `${path}:${op}:${user}:${token}` : `${path}:${op}:${user}:${token}:${exp}`;
  return "v1_" + createHash("sha256").update(raw).digest("base64").replace(/=+$/, "");
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.byteLength === y.byteLength && timingSafeEqual(x, y);
}

/**
 * Authorises a /files request: no token set, or the right X-Access-Token, or a valid unexpired
 * signature. Returns the 401 message, or undefined when allowed.
 */
export function checkFileAccess(url: URL, op: FileOp, headerToken: string | null, token: string | undefined, nowMs = Date.now()): string | undefined {
  if (token === undefined) return undefined;
  if (headerToken !== null) return safeEqual(headerToken, token) ? undefined : "invalid access token";
  const sig = url.searchParams.get("signature");
  if (sig === null) return "missing signature query parameter";
  const expRaw = url.searchParams.get("signature_expiration");
  let exp: number | undefined;
  if (expRaw !== null) {
    if (!/^\d{1,12}$/.test(expRaw)) return "invalid signature expiration";
    exp = Number(expRaw);
    if (exp * 1000 < nowMs) return "signature is already expired";
  }
  const expected = fileSignature(url.searchParams.get("path") ?? "", op, url.searchParams.get("username") ?? "", token, exp);
  return safeEqual(sig, expected) ? undefined : "invalid signature";
}
