// What a template gives each of its sandboxes besides its disks: env vars, default user and workdir, and
// the start command; stored as JSON in templates.defaults (migration 12), read at every create and resume.
import { z } from "zod";
import type { TemplateRow } from "./schema.ts";

export const TemplateDefaults = z
  .object({
    /** Env vars of every process, under the create's own (E2B: image/template env < create envs < command envs). */
    envVars: z.record(z.string(), z.string()).optional(),
    /** The user of commands that name none; E2B's is `user`. */
    user: z.string().min(1).optional(),
    /** The cwd of commands that name none; unset: the user's home. */
    workdir: z.string().startsWith("/").optional(),
    /** The start command: an OCI image's ENTRYPOINT + CMD (stored, not run), or a build's startCmd (run). */
    startCmd: z.string().optional(),
    /** Set by builds over the API: startCmd runs in the template VM before its ready snapshot is taken, so it
     *  runs in every sandbox (E2B's start command); src/templates/start-cmd.ts. */
    runStartCmd: z.boolean().optional(),
    /** Exits 0 once the started service is ready; polled before the snapshot. Unset: ready when started. */
    readyCmd: z.string().optional(),
  })
  .strict();
export type TemplateDefaults = z.infer<typeof TemplateDefaults>;

/** E2B's defaults for a template that says nothing (spec §3.4: /init's defaultUser, defaultWorkdir). */
export const E2B_DEFAULT_USER = "user";
export const E2B_DEFAULT_WORKDIR = "/home/user";

/** The row's defaults; a column that does not parse (hand-edited) counts as none rather than failing creates. */
export function templateDefaults(t: Pick<TemplateRow, "defaults">): TemplateDefaults {
  try {
    const r = TemplateDefaults.safeParse(JSON.parse(t.defaults));
    return r.success ? r.data : {};
  } catch {
    return {};
  }
}

/** What the agent's /init gets for a sandbox of template t: the template's env under the sandbox's own. */
export function initDefaults(t: Pick<TemplateRow, "defaults">, envVars: Record<string, string> | undefined): { envVars: Record<string, string>; defaultUser: string; defaultWorkdir?: string } {
  const d = templateDefaults(t);
  const user = d.user ?? E2B_DEFAULT_USER;
  // A template that names a user but no workdir starts commands in that user's home (the agent's fallback).
  const workdir = d.workdir ?? (user === E2B_DEFAULT_USER ? E2B_DEFAULT_WORKDIR : undefined);
  return { envVars: { ...d.envVars, ...envVars }, defaultUser: user, ...(workdir ? { defaultWorkdir: workdir } : {}) };
}
