// E2B's `network` on create and the body of PUT /sandboxes/{id}/network: validated (400 naming the field), the
// unsupported fields refused, and the config as it is stored on the sandbox row and returned by GET.
import { z } from "zod";
import { compilePolicyCached } from "../net/policy.ts";
import { badRequest } from "../util/errors.ts";

const entries = z.array(z.string().max(300)).max(10_000);

/** SandboxNetworkConfig (create). Unknown fields pass (newer SDK fields), except the ones refused below. */
export const NetworkConfig = z
  .object({
    allowOut: entries.nullish(),
    denyOut: entries.nullish(),
    allowPublicTraffic: z.boolean().nullish(),
    maskRequestHost: z.string().max(256).nullish(),
  })
  .passthrough();
export type NetworkConfig = z.infer<typeof NetworkConfig>;

/** SandboxNetworkUpdateConfig (PUT): replaces the egress rules; an omitted field clears. */
export const NetworkUpdateBody = z
  .object({ allow_internet_access: z.boolean().nullish(), allowOut: entries.nullish(), denyOut: entries.nullish() })
  .passthrough();
export type NetworkUpdateBody = z.infer<typeof NetworkUpdateBody>;

/** What the row keeps and GET returns (E2B's SandboxNetworkConfig fields onebox takes). */
export interface StoredNetwork {
  allowOut?: string[];
  denyOut?: string[];
  allowPublicTraffic?: boolean;
  maskRequestHost?: string;
}

const UNSUPPORTED: Record<string, string> = {
  rules: "per-domain header transform rules are not supported by onebox",
  egressProxy: "an egress proxy is not supported by onebox (E2B's open-source infra refuses it too)",
};

function refuseUnsupported(body: Record<string, unknown>, field: string): void {
  for (const [k, why] of Object.entries(UNSUPPORTED))
    if (body[k] !== undefined && body[k] !== null) throw badRequest(`${field}.${k}: ${why}`);
}

/** Validates a create's `network` with its `allow_internet_access`; the config to store (null: none given). */
export function createNetwork(network: NetworkConfig | null | undefined, allowInternetAccess: boolean | null | undefined): StoredNetwork | null {
  if (!network) {
    compilePolicyCached({ allowInternetAccess: allowInternetAccess ?? undefined });
    return null;
  }
  refuseUnsupported(network, "network");
  const stored: StoredNetwork = {
    ...(network.allowOut ? { allowOut: network.allowOut } : {}),
    ...(network.denyOut ? { denyOut: network.denyOut } : {}),
    ...(network.allowPublicTraffic != null ? { allowPublicTraffic: network.allowPublicTraffic } : {}),
    ...(network.maskRequestHost != null ? { maskRequestHost: network.maskRequestHost } : {}),
  };
  compilePolicyCached({ ...stored, allowInternetAccess: allowInternetAccess ?? undefined });
  return stored;
}

/** Validates a PUT body; the new stored config keeps the create-only fields (allowPublicTraffic, maskRequestHost). */
export function updateNetwork(body: NetworkUpdateBody, current: StoredNetwork | null): StoredNetwork {
  refuseUnsupported(body, "body");
  compilePolicyCached({ allowOut: body.allowOut ?? undefined, denyOut: body.denyOut ?? undefined, allowInternetAccess: body.allow_internet_access ?? undefined }, "body");
  return {
    ...(body.allowOut ? { allowOut: body.allowOut } : {}),
    ...(body.denyOut ? { denyOut: body.denyOut } : {}),
    ...(current?.allowPublicTraffic != null ? { allowPublicTraffic: current.allowPublicTraffic } : {}),
    ...(current?.maskRequestHost != null ? { maskRequestHost: current.maskRequestHost } : {}),
  };
}

export function parseStoredNetwork(json: string | null): StoredNetwork | null {
  if (!json) return null;
  try {
    return JSON.parse(json) as StoredNetwork;
  } catch {
    return null;
  }
}
