// Data-plane access for secure sandboxes (issue 11 item 5): which port requests need the envd token.
import { CODE_INTERPRETER_PORT, ENVD_PORT } from "../../guest/protocol.ts";
import { VISIBLE_STATES } from "../sandbox/lifecycle.ts";
import { safeEqual } from "../util/safe-equal.ts";
import { signedWith } from "./signed-url.ts";

/** The secrets a sandbox's ports accept. `traffic` is E2B's trafficAccessToken (allowPublicTraffic: false, issued on
 *  create): every port but envd's then needs it. */
export interface PortSecrets {
  envd: string | null;
  traffic: string | null;
  /** Not a secret, but looked up with them: E2B's network.maskRequestHost (`${PORT}` is the port), the Host header
   *  the sandbox's ports see instead of the client's; null: the client's is passed on. */
  maskRequestHost?: string | null;
}

/** null: no such visible sandbox (the router then answers its 502). */
export type SecretsLookup = (id: string) => PortSecrets | null;

/** The lookup over the sandbox rows: the proxy needs only this, not the whole manager. */
export function secretsFromRows(rows: {
  get(id: string): { state: string; envdAccessToken: string | null; trafficAccessToken: string | null; network: string | null } | undefined;
}): SecretsLookup {
  return (id) => {
    const row = rows.get(id);
    if (!row || !(VISIBLE_STATES as readonly string[]).includes(row.state)) return null;
    return { envd: row.envdAccessToken, traffic: row.trafficAccessToken, maskRequestHost: maskOf(row.network) };
  };
}

function maskOf(network: string | null): string | null {
  if (!network) return null;
  try {
    const m = (JSON.parse(network) as { maskRequestHost?: unknown }).maskRequestHost;
    return typeof m === "string" && m !== "" ? m : null;
  } catch {
    return null;
  }
}

/** The Host header a request to `port` carries into the sandbox under mask (E2B's `${PORT}` placeholder). */
export function maskedHost(mask: string, port: number): string {
  return mask.replaceAll("${PORT}", String(port));
}

/** envd's own 401 (spec §3.5): the SDK maps it to AuthenticationError. */
const ENVD_UNAUTHORIZED = "unauthorized access, please provide a valid access token or method signing if supported";

function unauthorized(sandboxId: string, port: number): Response {
  const message =
    port === ENVD_PORT
      ? ENVD_UNAUTHORIZED
      : `sandbox ${sandboxId} is secure: send its envdAccessToken in the X-Access-Token header to reach port ${port} (docs/api.md "Data-plane access")`;
  return Response.json({ code: 401, message }, { status: 401 });
}

/** Requests E2B's SDKs send without X-Access-Token, which must keep working (spec §2.2, §3.5):
 *  envd's /health and CORS preflights, and the code interpreter's /health and /contexts* calls
 *  (the SDK sends the token only on /execute; none of these runs code). */
function exempt(req: Request, url: URL, port: number, secrets: PortSecrets): boolean {
  const m = req.method;
  const p = url.pathname;
  if (port === ENVD_PORT) return m === "OPTIONS" || (m === "GET" && p === "/health");
  if (port !== CODE_INTERPRETER_PORT) return false;
  if (m === "OPTIONS" || (m === "GET" && p === "/health")) return true;
  // With a traffic token the SDK sends it on these, and the traffic check requires it.
  if (secrets.traffic !== null) return false;
  if (p === "/contexts") return m === "GET" || m === "POST";
  return /^\/contexts\/[^/]+$/.test(p) ? m === "DELETE" : /^\/contexts\/[^/]+\/restart$/.test(p) && m === "POST";
}

/** E2B's edge for a sandbox created with allowPublicTraffic: false and a request without its traffic token. */
function forbidden(sandboxId: string, port: number): Response {
  const message = `sandbox ${sandboxId} does not allow public traffic: send its trafficAccessToken in the e2b-traffic-access-token header to reach port ${port}`;
  return Response.json({ code: 403, message }, { status: 403 });
}

/** null when the request may pass, else the 401 or 403 to answer. Runs before any forward slot or resume. */
export async function checkPortAccess(req: Request, url: URL, sandboxId: string, port: number, secrets: PortSecrets | null): Promise<Response | null> {
  if (!secrets || (secrets.envd === null && secrets.traffic === null)) return null; // not secure: open, as E2B
  // envd keeps its own access token (or none, for a v1 sandbox created without `secure`): the traffic token is
  // never asked there.
  if (port === ENVD_PORT && secrets.envd === null) return null;
  const token = req.headers.get("x-access-token");
  if (secrets.envd !== null && token !== null && safeEqual(token, secrets.envd)) return null;
  // E2B's edge: the traffic token opens every port but envd, which checks X-Access-Token itself.
  const traffic = req.headers.get("e2b-traffic-access-token");
  if (port !== ENVD_PORT && secrets.traffic !== null && traffic !== null && safeEqual(traffic, secrets.traffic)) return null;
  if (exempt(req, url, port, secrets)) return null;
  // envd's /files: with no header, a signature made with this sandbox's token (spec §3.5).
  const isFiles = port === ENVD_PORT && url.pathname === "/files" && (req.method === "GET" || req.method === "POST");
  if (isFiles && token === null && secrets.envd !== null && (await signedWith(url, req.method, secrets.envd))) return null;
  return port !== ENVD_PORT && secrets.traffic !== null ? forbidden(sandboxId, port) : unauthorized(sandboxId, port);
}
