// Templates, the default templates' builds in progress or failed, and the build logs on the host.
import { api } from "./api.ts";
import { bytes, failed, h, show, time } from "./dom.ts";
import type { Template } from "./types.ts";

interface Builds {
  running: Record<string, { state: string; since?: number; message?: string }>;
  logs: { file: string; modifiedAt: number; bytes: number }[];
}

export function templatesPage(root: HTMLElement): () => void {
  const logView = h("pre", { class: "console", hidden: true, tabindex: 0 });
  const openLog = async (file: string) => {
    logView.hidden = false;
    logView.textContent = "Loading…";
    try {
      logView.textContent = (await api<string>(`/onebox/builds/${encodeURIComponent(file)}`, { text: true })) || "(empty)";
    } catch (e) {
      logView.textContent = String(e instanceof Error ? e.message : e);
    }
  };
  void (async () => {
    try {
      const [tpls, builds] = await Promise.all([api<Template[]>("/templates"), api<Builds>("/onebox/builds")]);
      show(
        root,
        h("h1", {}, "Templates"),
        h(
          "table",
          { class: "grid" },
          h("thead", {}, h("tr", {}, h("th", {}, "Template"), h("th", {}, "Aliases"), h("th", {}, "Shape"), h("th", { class: "opt" }, "envd"), h("th", { class: "opt" }, "Created"))),
          h(
            "tbody",
            {},
            ...tpls.map((t) =>
              h("tr", {}, h("td", { class: "mono" }, t.templateID), h("td", {}, t.aliases.join(", ")), h("td", {}, `${t.cpuCount} vCPU, ${t.memoryMB} MiB`), h("td", { class: "opt" }, t.envdVersion ?? ""), h("td", { class: "opt" }, time(Date.parse(t.createdAt)))),
            ),
          ),
        ),
        h("h2", {}, "Builds"),
        Object.keys(builds.running).length
          ? h("ul", {}, ...Object.entries(builds.running).map(([name, b]) => h("li", {}, h("b", {}, name), ` ${b.state}`, b.since ? ` since ${time(b.since)}` : "", b.message ? `: ${b.message}` : "")))
          : h("p", { class: "muted" }, "No default template is being built."),
        h("h2", {}, "Build logs"),
        builds.logs.length
          ? h("ul", { class: "logs" }, ...builds.logs.map((l) => h("li", {}, h("button", { type: "button", class: "link", onclick: () => openLog(l.file) }, l.file), ` ${bytes(l.bytes)}, ${time(l.modifiedAt)}`)))
          : h("p", { class: "muted" }, "No build logs on this host."),
        logView,
      );
    } catch (e) {
      show(root, h("h1", {}, "Templates"), failed(e));
    }
  })();
  return () => undefined;
}
