// Decides which plane a request belongs to (spec §2.4): E2b-Sandbox-Id header, Host label, or control.

export type Dispatch =
  | { plane: "control" }
  | { plane: "data"; sandboxId: string; port: number }
  | { plane: "signed-files" }
  | { plane: "bad"; message: string };

const HOST_LABEL = /^(\d{1,5})-([a-z0-9]+)$/;

function parsePort(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

export function classify(req: Request, url: URL): Dispatch {
  const id = req.headers.get("e2b-sandbox-id");
  const portHeader = req.headers.get("e2b-sandbox-port");
  // Header routing (spec §2.3): exactly one of the two headers present is an error.
  if (id !== null || portHeader !== null) {
    if (id === null || portHeader === null) {
      return { plane: "bad", message: "send both E2b-Sandbox-Id and E2b-Sandbox-Port, or neither" };
    }
    const port = parsePort(portHeader.trim());
    if (port === null) return { plane: "bad", message: `E2b-Sandbox-Port '${portHeader}' is not a port number` };
    return { plane: "data", sandboxId: id.trim(), port };
  }
  // Host routing: the left-most label is <port>-<sandboxId> (spec §2.3, §2.4 item 2).
  const host = req.headers.get("host") ?? url.host;
  const label = host.split(".")[0] ?? "";
  const m = host.includes(".") ? HOST_LABEL.exec(label) : null;
  if (m) {
    const port = parsePort(m[1]!);
    if (port !== null) return { plane: "data", sandboxId: m[2]!, port };
  }
  // Signed /files URLs carry no sandbox identity under E2B_SANDBOX_URL (spec §2.4 item 1).
  if (url.pathname === "/files" && url.searchParams.has("signature")) return { plane: "signed-files" };
  return { plane: "control" };
}
