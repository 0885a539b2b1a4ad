// Template tags (E2B's template versioning): a name's tag points at one build, which is a template row of its own
// with its files and ready snapshot. Builds and POST /templates/tags point tags, DELETE /templates/tags removes them;
// the name's alias stays on its `default` tag's build (what a bare name creates), and a build no tag points at any
// more goes, unless sandboxes or snapshots still use it. docs/templates.md "Tags".
import type { State, TemplateRow } from "../store/index.ts";
import { aliasesOf, DEFAULT_TAG } from "../store/template-store.ts";
import { badRequest, notFound } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { removeTemplate } from "./register.ts";
import { snapshotsOver } from "./snapshot.ts";

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** "name" or "name:tag" (a bare name is its `default` tag); a 400 saying what is wrong otherwise. */
export function parseTemplateRef(ref: string): { name: string; tag: string } {
  const [name, tag, ...rest] = ref.split(":");
  if (rest.length > 0 || !name || tag === "") throw badRequest(`template name '${ref.slice(0, 200)}' must be NAME or NAME:TAG`);
  if (!NAME.test(name)) throw badRequest(`template name '${name.slice(0, 200)}' must be lowercase letters, digits, '.', '_' or '-' (at most 63)`);
  if (tag !== undefined) checkTag(tag);
  return { name, tag: tag ?? DEFAULT_TAG };
}

export function checkTag(tag: string): void {
  if (!TAG.test(tag)) throw badRequest(`tag '${tag.slice(0, 200)}' must be letters, digits, '.', '_' or '-', starting with a letter or digit (at most 64)`);
}

/** What E2B calls a build's id: the API build's UUID, else (a template registered otherwise) the template's id. */
export function buildIdOf(t: TemplateRow): string {
  return t.buildId ?? t.id;
}

/** Points name:tag at templateId for each tag; a build that loses its last tag goes unless something uses it. */
export function assignTags(state: State, name: string, tags: string[], templateId: string): void {
  if (!state.templates.byId(templateId)) throw notFound(`template '${templateId}' not found`);
  adoptAlias(state, name);
  const before = new Set<string>();
  const now = Date.now();
  for (const tag of new Set(tags)) {
    checkTag(tag);
    const prev = state.tags.set(name, tag, templateId, now);
    if (prev && prev !== templateId) before.add(prev);
  }
  for (const id of [...before, ...syncAlias(state, name)]) dropIfUntagged(state, id);
  pruneUnnamedBuilds(state);
}

/** Removes name's tags (all or nothing: 404 naming a tag it does not have); their builds go as in assignTags. */
export function removeTags(state: State, name: string, tags: string[]): void {
  adoptAlias(state, name);
  const have = new Map(state.tags.ofName(name).map((t) => [t.tag, t.templateId]));
  if (have.size === 0) throw notFound(`template '${name}' not found`);
  const missing = tags.filter((t) => !have.has(t));
  if (missing.length > 0) throw notFound(`template '${name}' has no tag ${missing.map((t) => `'${t}'`).join(", ")}: its tags are ${[...have.keys()].join(", ")}`);
  state.tags.delete(name, tags);
  const lost = new Set(tags.map((t) => have.get(t)!));
  for (const id of [...lost, ...syncAlias(state, name)]) dropIfUntagged(state, id);
  pruneUnnamedBuilds(state);
}

/** GET /templates/{id}/tags: the tags of the name ref is (or has, for a template id or name:tag), oldest first. */
export function listTags(state: State, ref: string): { tag: string; buildID: string; createdAt: string }[] {
  const byId = state.templates.byId(ref);
  const names = byId ? [...new Set([...aliasesOf(byId), ...state.tags.ofTemplate(byId.id).map((t) => t.name)])] : [parseTemplateRef(ref).name];
  const out: { tag: string; buildID: string; createdAt: string }[] = [];
  for (const name of names) {
    const rows = state.tags.ofName(name);
    if (rows.length === 0) {
      // A template registered before tags (or by `onebox template add`): its alias is its default tag.
      const holder = state.templates.list().find((t) => aliasesOf(t).includes(name));
      if (holder) out.push({ tag: DEFAULT_TAG, buildID: buildIdOf(holder), createdAt: new Date(holder.createdAt).toISOString() });
      continue;
    }
    for (const r of rows) {
      const t = state.templates.byId(r.templateId);
      if (t) out.push({ tag: r.tag, buildID: buildIdOf(t), createdAt: new Date(r.createdAt).toISOString() });
    }
  }
  if (out.length === 0 && !byId) throw notFound(`template '${ref}' not found`);
  return out;
}

/** Whether a name is taken by a template (its alias) or by any tag. */
export function nameInUse(state: State, name: string): boolean {
  return state.tags.ofName(name).length > 0 || state.templates.list().some((t) => aliasesOf(t).includes(name));
}

/** A name with an alias but no tags yet (registered before tags, or by `onebox template add`) gets its
 *  `default` tag on the alias's template first, so tag changes treat it like any build. */
function adoptAlias(state: State, name: string): void {
  if (state.tags.ofName(name).length > 0) return;
  const holder = state.templates.list().find((t) => aliasesOf(t).includes(name));
  if (holder) state.tags.set(name, DEFAULT_TAG, holder.id, holder.createdAt);
}

/** Puts the name's alias on its default tag's template only; returns the templates that lost it. */
function syncAlias(state: State, name: string): string[] {
  const holder = state.tags.get(name, DEFAULT_TAG)?.templateId;
  const lost: string[] = [];
  for (const t of state.templates.list()) {
    const aliases = aliasesOf(t);
    const has = aliases.includes(name);
    if (t.id === holder && !has) state.templates.update(t.id, { aliases: [...aliases, name] });
    if (t.id !== holder && has) {
      state.templates.update(t.id, { aliases: aliases.filter((a) => a !== name) });
      lost.push(t.id);
    }
  }
  return lost;
}

/** Removes a template no tag or alias names, unless live sandboxes or snapshots use it (then it stays, unnamed,
 *  and an API build is swept by pruneUnnamedBuilds once they are gone). */
function dropIfUntagged(state: State, id: string): void {
  const t = state.templates.byId(id);
  if (!t || aliasesOf(t).length > 0 || state.tags.ofTemplate(id).length > 0) return;
  if (state.sandboxes.countLiveOfTemplate(id) > 0 || snapshotsOver(t, state.templates.list()).length > 0) return;
  removeTemplate(state, id);
  log.info("removed a template build no tag names", { template: id, build: buildIdOf(t) });
}

/** API builds left unnamed while something used them, now unused. */
function pruneUnnamedBuilds(state: State): void {
  for (const t of state.templates.list()) {
    if (t.buildId !== null && !t.ephemeral && t.snapshotOf === null) dropIfUntagged(state, t.id);
  }
}
