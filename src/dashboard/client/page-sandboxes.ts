// The sandboxes list: live and ended, filtered by state and template, with age, CPU/memory sparklines, end reason.
import { api } from "./api.ts";
import { sparkline } from "./charts.ts";
import { ago, badge, bytes, duration, failed, h, show } from "./dom.ts";
import { LIVE, type Row } from "./types.ts";

const FILTERS: Record<string, string> = { live: LIVE.join(","), running: "running", paused: "paused", ended: "ended", all: "" };

export function sandboxesPage(root: HTMLElement, params: URLSearchParams): () => void {
  const state = params.get("state") ?? "live";
  const template = params.get("template") ?? "";
  const body = h("div", { class: "list" }, h("p", { class: "muted" }, "Loading…"));
  const setFilter = (k: string, v: string) => {
    const p = new URLSearchParams({ state, template, [k]: v });
    location.hash = `#/sandboxes?${p}`;
  };
  const stateSel = h("select", { id: "f-state", "aria-label": "state", onchange: (e) => setFilter("state", (e.target as HTMLSelectElement).value) });
  for (const k of Object.keys(FILTERS)) stateSel.appendChild(h("option", { value: k, selected: k === state }, k));
  const tplIn = h("input", { id: "f-template", placeholder: "template", value: template, "aria-label": "template", onchange: (e) => setFilter("template", (e.target as HTMLInputElement).value.trim()) });
  show(root, h("div", { class: "bar" }, h("h1", {}, "Sandboxes"), h("div", { class: "filters" }, stateSel, tplIn)), body);

  const load = async () => {
    const q = new URLSearchParams({ limit: "100" });
    if (FILTERS[state]) q.set("state", FILTERS[state]!);
    if (template) q.set("template", template);
    try {
      const rows = await api<Row[]>(`/onebox/sandboxes?${q}`);
      show(body, rows.length ? table(rows) : h("p", { class: "muted" }, "No sandboxes match."));
    } catch (e) {
      show(body, failed(e));
    }
  };
  void load();
  const timer = setInterval(() => document.visibilityState === "visible" && void load(), 5000);
  return () => clearInterval(timer);
}

function table(rows: Row[]): HTMLElement {
  const now = Date.now();
  return h(
    "table",
    { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", {}, "Sandbox"), h("th", {}, "Template"), h("th", {}, "State"), h("th", { class: "opt" }, "Age"), h("th", { class: "opt" }, "CPU"), h("th", { class: "opt" }, "Memory"), h("th", {}, "End reason"))),
    h(
      "tbody",
      {},
      ...rows.map((r) => {
        const cpu = r.spark?.cpu ?? [];
        const mem = r.spark?.mem ?? [];
        const age = r.endedAt ? `ran ${duration(r.endedAt - r.startedAt)}` : ago(r.startedAt, now);
        return h(
          "tr",
          { "data-id": r.sandboxID },
          h("td", {}, h("a", { href: `#/sandboxes/${encodeURIComponent(r.sandboxID)}`, class: "mono" }, r.sandboxID)),
          h("td", {}, r.alias ?? r.templateID),
          h("td", {}, badge(r.state)),
          h("td", { class: "opt" }, age),
          h("td", { class: "opt" }, sparkline(cpu, cpu.length ? `CPU ${cpu[cpu.length - 1]}%` : "CPU: no samples", 100)),
          h("td", { class: "opt" }, sparkline(mem, mem.length ? `memory ${bytes(mem[mem.length - 1]!)}` : "memory: no samples")),
          h("td", { class: "reason" }, r.endReason ? `${r.endReason}${r.endDetail ? `: ${r.endDetail}` : ""}` : ""),
        );
      }),
    ),
  );
}
