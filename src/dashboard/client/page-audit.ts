// The audit log (admin key only): newest first, a page at a time.
import { api } from "./api.ts";
import { failed, h, show, time } from "./dom.ts";
import type { AuditRow } from "./types.ts";

const PAGE = 100;

export function auditPage(root: HTMLElement): () => void {
  const tbody = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Older");
  const err = h("div");
  let before: number | undefined;
  const load = async () => {
    try {
      const rows = await api<AuditRow[]>(`/onebox/audit?limit=${PAGE}${before !== undefined ? `&before=${before}` : ""}`);
      for (const r of rows)
        tbody.appendChild(
          h("tr", {}, h("td", {}, time(r.at)), h("td", { class: "mono" }, r.keyId ?? "—"), h("td", { class: "opt" }, r.plane), h("td", {}, r.op), h("td", { class: "mono" }, r.sandboxId ?? ""), h("td", { class: "detail" }, r.detail), h("td", { class: "opt" }, r.status ?? "")),
        );
      before = rows[rows.length - 1]?.id;
      more.hidden = rows.length < PAGE;
    } catch (e) {
      show(err, failed(e));
    }
  };
  more.addEventListener("click", () => void load());
  show(
    root,
    h("h1", {}, "Audit log"),
    err,
    h("table", { class: "grid" }, h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "Key"), h("th", { class: "opt" }, "Plane"), h("th", {}, "Operation"), h("th", {}, "Sandbox"), h("th", {}, "Detail"), h("th", { class: "opt" }, "Status"))), tbody),
    more,
  );
  void load();
  return () => undefined;
}
