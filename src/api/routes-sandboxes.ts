// Sandbox resource routes: create (v1, v2), get, delete, list (v1, v2) — spec §1.3.
import { requestKey } from "./audit.ts";
import { type Context, Hono } from "hono";
import { listPage, parseMetadataFilter } from "../sandbox/list-query.ts";
import type { CreateInput } from "../sandbox/manager.ts";
import { domain, type ApiDeps } from "./deps.ts";
import { parseBody, parseQuery } from "./body.ts";
import { e2bError } from "./errors.ts";
import type { SandboxState } from "../store/index.ts";
import { notFound, unavailable } from "../util/errors.ts";
import { createNetwork, NetworkUpdateBody, parseStoredNetwork, updateNetwork, type StoredNetwork } from "./network-body.ts";
import { ListQueryV2, NewSandboxV1, NewSandboxV2 } from "./schemas.ts";
import { listedSandboxJson, sandboxDetailJson, sandboxJson } from "./serialize.ts";

/** The row states each E2B list state stands for (spec §1.3: the API knows only running and paused). */
const LISTED_RUNNING: SandboxState[] = ["starting", "running", "resuming", "stopping"];
const LISTED_PAUSED: SandboxState[] = ["pausing", "paused"];

export function sandboxRoutes(d: ApiDeps): Hono {
  const app = new Hono();
  const max = d.config.maxBodyBytes;

  // The template is resolved once here: its cost is admitted and the same row is created from.
  // network: validated before anything is made (a bad one is a 400 and nothing changes), stored on the row and
  // written into the sandbox's slot before its vmm spawns (src/sandbox/egress.ts).
  async function create(input: CreateInput, network: StoredNetwork | null) {
    return createRow({ ...input, network: network ? JSON.stringify(network) : null, allowPublicTraffic: network?.allowPublicTraffic });
  }

  async function createRow(input: CreateInput) {
    const found = d.state.templates.resolve(input.templateID);
    const build = found ? undefined : d.templateBuilds?.statusOf(input.templateID);
    if (build?.state === "building") {
      throw unavailable(`template '${input.templateID}' is being built (since ${new Date(build.since).toISOString()}); retry in a few minutes`);
    }
    if (build?.state === "failed") {
      throw unavailable(`template '${input.templateID}' could not be built: ${build.message}; fix it and run \`onebox template build ${input.templateID}\``);
    }
    if (!found) throw notFound(`template '${input.templateID}' not found`);
    const t = found;
    return d.admission.admit({ cpus: t.cpuCount, memoryMib: t.memoryMb }, () => d.manager.create(input, t));
  }

  /** The create both versions make: v2 (JS 2.51) is always secure, timeout default 300; v1 (JS ≤ 2.50, Python) is
   *  secure only when asked, timeout default 15 (the schemas hold the defaults). */
  const createFrom = async (c: Context, b: NewSandboxV1 | NewSandboxV2, secure: boolean) => {
    const network = createNetwork(b.network, b.allow_internet_access);
    const row = await create({
      templateID: b.templateID,
      timeoutSec: b.timeout,
      metadata: b.metadata ?? {},
      envVars: b.envVars ?? {},
      secure,
      allowInternetAccess: b.allow_internet_access ?? null,
      autoPause: b.autoPause ?? false,
      autoPauseMemory: b.autoPauseMemory ?? true,
      keyId: requestKey(c.req.raw),
      autoResume: b.autoResume?.enabled ?? false,
    }, network);
    return c.json(sandboxJson(row, domain(d)), 201);
  };
  app.post("/v2/sandboxes", async (c) => createFrom(c, await parseBody(c, NewSandboxV2, max), true));
  app.post("/sandboxes", async (c) => {
    const b = await parseBody(c, NewSandboxV1, max);
    return createFrom(c, b, b.secure ?? false);
  });

  app.get("/sandboxes/:id", (c) => c.json(sandboxDetailJson(d.manager.getVisible(c.req.param("id")), domain(d))));

  // Validated, stored (GET returns it) and written into the running sandbox's slot before the answer; a paused
  // sandbox gets it at resume.
  app.put("/sandboxes/:id/network", async (c) => {
    const row = d.manager.getVisible(c.req.param("id"));
    const b = await parseBody(c, NetworkUpdateBody, max);
    const stored = updateNetwork(b, parseStoredNetwork(row.network));
    d.manager.setNetwork(row.id, JSON.stringify(stored), b.allow_internet_access ?? null);
    return c.body(null, 204);
  });

  app.delete("/sandboxes/:id", async (c) => {
    const id = c.req.param("id");
    // The JS SDK reads 404 from body.code (spec §1.2): kill() → false.
    if (!d.manager.get(id)) return e2bError(404, `sandbox ${id} not found`);
    await d.manager.kill(id);
    return c.body(null, 204);
  });

  app.get("/v2/sandboxes", (c) => {
    const q = parseQuery(c, ListQueryV2);
    const states = q.state.flatMap((s) => (s === "running" ? LISTED_RUNNING : LISTED_PAUSED));
    let templateIds: string[] | undefined;
    if (q.template) {
      const t = d.state.templates.resolve(q.template);
      templateIds = t ? [t.id] : [q.template];
    }
    const { items, nextToken } = listPage(d.state.sandboxes, {
      metadata: parseMetadataFilter(q.metadata),
      states,
      limit: q.limit,
      nextToken: q.nextToken,
      order: q.order,
      startedAfterMs: q.startedAfter,
      templateIds,
    });
    if (nextToken) c.header("X-Next-Token", nextToken);
    c.header("X-Total-Running", String(d.state.sandboxes.countLiveInState("running")));
    return c.json(items.map(listedSandboxJson));
  });

  // Deprecated v1 list: running only, no paging; same metadata filter.
  app.get("/sandboxes", (c) => {
    const metadata = parseMetadataFilter(c.req.query("metadata"));
    const states = LISTED_RUNNING;
    const { items } = listPage(d.state.sandboxes, { metadata, states, order: "desc" });
    return c.json(items.map(listedSandboxJson));
  });

  return app;
}
