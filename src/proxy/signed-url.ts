// envd's signed /files URLs (spec §3.5): compute signatures, and find the sandbox a URL was signed for.
import { safeEqual } from "../util/safe-equal.ts";

/** "v1_" + base64(sha256(path:op:user:token[:exp])) without trailing '=' (spec §3.5). */
export async function fileSignature(path: string, op: "read" | "write", user: string, token: string, exp?: string): Promise<string> {
  const input = [path, op, user, token, ...(exp ? [exp] : [])].join(":");
  const hash = new Bun.CryptoHasher("sha256").update(input).digest("base64");
  return "v1_" + hash.replace(/=+$/, "");
}

/** True when the URL's signature was made with `token` (expiry is left to envd, which answers 401
 *  "signature is already expired"). Compared in constant time. */
export async function signedWith(url: URL, method: string, token: string): Promise<boolean> {
  const signature = url.searchParams.get("signature");
  const path = url.searchParams.get("path");
  if (!signature || path === null) return false;
  const op = method === "GET" || method === "HEAD" ? "read" : "write";
  const user = url.searchParams.get("username") ?? "";
  const exp = url.searchParams.get("signature_expiration") ?? undefined;
  return safeEqual(signature, await fileSignature(path, op, user, token, exp));
}

/** Under E2B_SANDBOX_URL, downloadUrl()/uploadUrl() carry no sandbox id: the only identity is the
 *  signature, so recompute it against each running sandbox's token (spec §2.4 item 1). Expired
 *  signatures still route: the agent then answers 401 "signature is already expired". */
export async function sandboxForSignedUrl(
  url: URL,
  method: string,
  candidates: { id: string; token: string }[],
): Promise<string | null> {
  // Every candidate is checked: the answer's timing tells nothing about which token matched.
  let found: string | null = null;
  for (const c of candidates) {
    if ((await signedWith(url, method, c.token)) && found === null) found = c.id;
  }
  return found;
}
