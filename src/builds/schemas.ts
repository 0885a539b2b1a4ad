// The E2B build API's bodies (the e2b 2.51 SDK's template/buildApi.ts and serialize()): the single source of their
// shapes; types come from these.
import { z } from "zod";

const MAX_ARG = 64 * 1024;

/** POST /v3/templates. `name` is "name[:tag]"; minFreeDiskMb is accepted and ignored (one host, its own disk). */
export const BuildRequest = z.object({
  name: z.string().min(1).max(128).optional(),
  alias: z.string().min(1).max(128).optional(),
  tags: z.array(z.string().min(1).max(64)).max(16).optional(),
  cpuCount: z.number().int().min(1).max(2).optional(),
  memoryMB: z.number().int().min(128).max(65536).optional(),
  minFreeDiskMb: z.number().int().optional(),
  teamID: z.string().optional(),
});
export type BuildRequest = z.infer<typeof BuildRequest>;

const Hash = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits (the SDK's sha256)");

/** One instruction as the SDK sends it. args by type: RUN [cmd, user?]; COPY [src, dest, user, mode];
 *  ENV [k1, v1, k2, v2...]; WORKDIR [path]; USER [name]. */
export const Step = z
  .object({
    type: z.enum(["RUN", "COPY", "ENV", "WORKDIR", "USER"]),
    args: z.array(z.string().max(MAX_ARG)).max(512),
    force: z.boolean().optional(),
    filesHash: Hash.optional(),
    forceUpload: z.boolean().optional(),
    resolveSymlinks: z.boolean().optional(),
    gzip: z.boolean().optional(),
  })
  .superRefine((s, ctx) => {
    const n = s.args.length;
    const bad = (m: string) => ctx.addIssue({ code: "custom", message: `${s.type} ${m}` });
    if (s.type === "RUN" && (n < 1 || n > 2 || s.args[0] === "")) bad("takes [command, user?]");
    if (s.type === "COPY" && (n < 2 || n > 4 || !s.filesHash)) bad("takes [src, dest, user?, mode?] and a filesHash");
    if (s.type === "COPY" && s.args[3] && !/^[0-7]{3,4}$/.test(s.args[3])) bad("mode must be octal");
    if (s.type === "ENV" && (n === 0 || n % 2 !== 0 || s.args.some((a, i) => i % 2 === 0 && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(a)))) bad("takes [name, value, ...] with names of letters, digits and _");
    if (s.type === "WORKDIR" && (n !== 1 || s.args[0] === "")) bad("takes [path]");
    if (s.type === "USER" && (n !== 1 || !/^[a-z_][a-z0-9_-]{0,31}$|^\d+$/.test(s.args[0] ?? ""))) bad("takes [user name]");
  });
export type Step = z.infer<typeof Step>;

/** POST /v2/templates/{id}/builds/{buildID}. AWS and GCP registry logins are refused (no such registries here). */
export const BuildBody = z
  .object({
    fromImage: z.string().min(1).max(512).optional(),
    fromTemplate: z.string().min(1).max(128).optional(),
    fromImageRegistry: z
      .object({ type: z.literal("registry"), username: z.string().min(1).max(512), password: z.string().min(1).max(4096) })
      .optional(),
    startCmd: z.string().max(MAX_ARG).optional(),
    readyCmd: z.string().max(MAX_ARG).optional(),
    force: z.boolean().optional(),
    steps: z.array(Step).max(256).default([]),
  })
  .refine((b) => (b.fromImage === undefined) !== (b.fromTemplate === undefined), { message: "give exactly one of fromImage and fromTemplate" });
export type BuildBody = z.infer<typeof BuildBody>;

export const StatusQuery = z.object({
  logsOffset: z.coerce.number().int().min(0).default(0),
  level: z.enum(["debug", "info", "warn", "error"]).optional(),
});

export const LogsQuery = z.object({
  cursor: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  direction: z.enum(["forward", "backward"]).default("forward"),
  level: z.enum(["debug", "info", "warn", "error"]).optional(),
  source: z.string().optional(),
});
