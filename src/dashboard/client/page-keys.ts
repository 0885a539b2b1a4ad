// API keys (admin key only): list, create (the key is shown once), revoke.
import { api } from "./api.ts";
import { failed, h, show, time } from "./dom.ts";
import type { Key } from "./types.ts";

export function keysPage(root: HTMLElement): () => void {
  const fresh = h("div", { role: "status" });
  const list = h("div");
  const load = async () => {
    try {
      const keys = await api<Key[]>("/onebox/keys");
      show(
        list,
        h(
          "table",
          { class: "grid" },
          h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Id"), h("th", { class: "opt" }, "Prefix"), h("th", { class: "opt" }, "Created"), h("th", {}, "Status"), h("th", {}, ""))),
          h(
            "tbody",
            {},
            ...keys.map((k) =>
              h(
                "tr",
                { "data-key": k.id },
                h("td", {}, k.name, k.admin ? " (admin)" : ""),
                h("td", { class: "mono" }, k.id),
                h("td", { class: "mono opt" }, `${k.prefix}…`),
                h("td", { class: "opt" }, time(k.createdAt)),
                h("td", {}, k.revokedAt ? `revoked ${time(k.revokedAt)}` : "active"),
                h("td", {}, !k.revokedAt && !k.admin && h("button", { type: "button", class: "danger", onclick: () => revoke(k) }, "Revoke")),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      show(list, failed(e));
    }
  };
  const revoke = async (k: Key) => {
    if (!confirm(`Revoke key ${k.name} (${k.id})? Clients using it get 401 from now on.`)) return;
    try {
      await api(`/onebox/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
    } catch (e) {
      show(fresh, failed(e));
    }
    await load();
  };
  const name = h("input", { name: "name", placeholder: "name", required: true, maxlength: 64, "aria-label": "new key name" });
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const k = await api<Key & { key: string }>("/onebox/keys", { method: "POST", body: { name: name.value } });
          show(fresh, h("p", {}, `Key ${k.name} created; it is shown only now:`), h("code", { class: "secret" }, k.key));
          name.value = "";
        } catch (err) {
          show(fresh, failed(err));
        }
        await load();
      },
    },
    name,
    h("button", { type: "submit" }, "Create key"),
  );
  show(root, h("h1", {}, "API keys"), form, fresh, list);
  void load();
  return () => undefined;
}
