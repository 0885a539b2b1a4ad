// envd's signed /files URLs (spec §3.5): compute signatures, and find the sandbox a URL was signed for.

/** "v1_" + base64(sha256(path:op:user:token[:exp])) without trailing '=' (spec §3.5). */
export async function fileSignature(path: string, op: "read" | "write", user: string, token: string, exp?: string): Promise<string> {
  const input = [path, op, user, token, ...(exp ? [exp] : [])].join(":");
  const hash = new Bun.CryptoHasher("sha256").update(input).digest("base64");
  return "v1_" + hash.replace(/=+$/, "");
}

/** Under E2B_SANDBOX_URL, downloadUrl()/uploadUrl() carry no sandbox id: the only identity is the
 *  signature, so recompute it against each running sandbox's token (spec §2.4 item 1). Expired
 *  signatures still route: the agent then answers 401 "signature is already expired". */
export async function sandboxForSignedUrl(
  url: URL,
  method: string,
  candidates: { id: string; token: string }[],
): Promise<string | null> {
  const signature = url.searchParams.get("signature");
  const path = url.searchParams.get("path");
  if (!signature || path === null) return null;
  const op = method === "GET" || method === "HEAD" ? "read" : "write";
  const user = url.searchParams.get("username") ?? "";
  const exp = url.searchParams.get("signature_expiration") ?? undefined;
  for (const c of candidates) {
    if ((await fileSignature(path, op, user, c.token, exp)) === signature) return c.id;
  }
  return null;
}
