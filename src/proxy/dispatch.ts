// Decides which plane a request belongs to (spec §2.4): E2b-Sandbox-Id header, Host label, or control.

export type Dispatch =
  | { plane: "control" }
  | { plane: "data"; sandboxId: string; port: number }
  | { plane: "signed-files" }
  | { plane: "bad"; message: string };

const HOST_LABEL = /^(\d{1,5})-([a-z0-9]+)$/;
/** A DNS name or an IP literal, with an optional port: what a Host header may hold (RFC 9110 §7.2). */
const HOST_HEADER = /^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The hostname of a Host value or a domain setting, lower case, without its port. */
export function hostnameOf(host: string): string {
  const h = host.toLowerCase();
  return h.startsWith("[") ? h.slice(0, h.indexOf("]") + 1) : h.replace(/:\d*$/, "");
}

/** The request's URL, or null when its Host header is malformed (`a%b`, a space): Bun's req.url is
 *  built from Host, and new URL() would throw on it. */
export function requestUrl(req: Request): URL | null {
  const host = req.headers.get("host");
  if (host !== null && !HOST_HEADER.test(host)) return null;
  try {
    return new URL(req.url);
  } catch {
    return null;
  }
}

function parsePort(s: string): number | null {
  if (!/^\d{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/** The sandbox and port a getHost() name (`<port>-<id>.<sandboxHost>`, lower case, no port) stands for, or null for
 *  any other name. Routing (classify) and the TLS listener's certificates (tls-certs.ts) both go by it. */
export function sandboxPortOf(name: string, sandboxHost: string): { sandboxId: string; port: number } | null {
  const dot = name.indexOf(".");
  const m = dot > 0 && name.slice(dot + 1) === sandboxHost ? HOST_LABEL.exec(name.slice(0, dot)) : null;
  const port = m ? parsePort(m[1]!) : null;
  return m && port !== null ? { sandboxId: m[2]!, port } : null;
}

/** `sandboxDomain` is the hostname getHost() URLs are under (`--domain`, default localhost): a
 *  `<port>-<id>.` label under any other name is not routed to a sandbox, so a DNS name rebound to
 *  this host (a browser's page at 8000-<id>.attacker.example) does not reach sandbox ports. */
export function classify(req: Request, url: URL, sandboxDomain = "localhost"): Dispatch {
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
  const target = sandboxPortOf(hostnameOf(req.headers.get("host") ?? url.host), hostnameOf(sandboxDomain));
  if (target) return { plane: "data", ...target };
  // Signed /files URLs carry no sandbox identity under E2B_SANDBOX_URL (spec §2.4 item 1).
  if (url.pathname === "/files" && url.searchParams.has("signature")) return { plane: "signed-files" };
  return { plane: "control" };
}
