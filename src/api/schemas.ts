// zod schemas of the E2B control-plane bodies and queries (spec §1.3): the single source of truth.
import { z } from "zod";
import { MAX_FORK_COUNT } from "../sandbox/fork.ts";
import { NetworkConfig } from "./network-body.ts";

/** E2B caps a sandbox's lifetime; 24 h is the largest plan's limit. */
export const MAX_TIMEOUT_SEC = 86_400;

const timeout = z.number().int().min(0).max(MAX_TIMEOUT_SEC);
const stringMap = z.record(z.string(), z.string());

/** Fields both create versions share. Unknown fields (mcp, iam, volumeMounts...) are accepted
 *  and ignored: the SDK always sends some of them (spec §1.3), and docs/api.md lists what is honoured. */
const createCommon = {
  templateID: z.string().min(1).max(256),
  metadata: stringMap.nullish(),
  envVars: stringMap.nullish(),
  allow_internet_access: z.boolean().nullish(),
  network: NetworkConfig.nullish(),
  autoPause: z.boolean().nullish(),
  autoPauseMemory: z.boolean().nullish(),
  autoResume: z.object({ enabled: z.boolean() }).nullish(),
};

/** POST /sandboxes (v1, JS ≤ 2.50): spec default timeout 15 s, `secure` opt-in. */
export const NewSandboxV1 = z.object({
  ...createCommon,
  timeout: timeout.default(15),
  secure: z.boolean().nullish(),
});
export type NewSandboxV1 = z.infer<typeof NewSandboxV1>;

/** POST /v2/sandboxes (JS 2.51): default timeout 300 s, always secure. */
export const NewSandboxV2 = z.object({
  ...createCommon,
  timeout: timeout.default(300),
});
export type NewSandboxV2 = z.infer<typeof NewSandboxV2>;

/** POST /v2/sandboxes/{id}/connect: body optional, timeout default 300 (spec §1.3 Connect). */
export const ConnectBody = z.object({
  timeout: timeout.default(300),
  memory: z.boolean().nullish(),
});

export const TimeoutBody = z.object({ timeout });
export const RefreshBody = z.object({ duration: z.number().int().min(0).max(3600).default(60) });
/** A snapshot's name becomes a template alias: the same characters as `onebox template add` names. */
export const SnapshotBody = z.object({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "name must be 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
    .nullish(),
});
export const ForkBody = z.object({
  timeout: z.number().int().min(0).max(MAX_TIMEOUT_SEC).nullish(),
  count: z.number().int().min(1).max(MAX_FORK_COUNT).nullish(),
});
export const PauseBody = z.object({ memory: z.boolean().nullish() });
export const ResumeBody = z.object({
  timeout: timeout.nullish(),
  autoPause: z.boolean().nullish(),
  memory: z.boolean().nullish(),
});

/** GET /v2/sandboxes query (spec §1.3). */
export const ListQueryV2 = z.object({
  metadata: z.string().optional(),
  state: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s) return ["running", "paused"] as ("running" | "paused")[];
      const parts = s.split(",").map((x) => x.trim()).filter(Boolean);
      for (const p of parts) {
        if (p !== "running" && p !== "paused") {
          ctx.addIssue({ code: "custom", message: `unknown state '${p}': use running, paused or both comma-separated` });
          return z.NEVER;
        }
      }
      return parts as ("running" | "paused")[];
    }),
  limit: z.coerce.number().int().min(1).max(100).default(100),
  nextToken: z.string().optional(),
  order: z.enum(["asc", "desc"]).default("desc"),
  startedAfter: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s) return undefined;
      const t = Date.parse(s);
      if (Number.isNaN(t)) {
        ctx.addIssue({ code: "custom", message: "startedAfter must be an RFC 3339 time, e.g. 2026-01-01T00:00:00Z" });
        return z.NEVER;
      }
      return t;
    }),
  template: z.string().optional(),
});

export const MetricsQuery = z.object({
  start: z.coerce.number().int().optional(),
  end: z.coerce.number().int().optional(),
});
