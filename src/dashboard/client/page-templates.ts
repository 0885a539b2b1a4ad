// Templates; their builds through the API (Template.build()) with their logs; the default templates' builds in
// progress or failed, and the build logs on the host.
import { api } from "./api.ts";
import { badge, bytes, failed, h, show, time } from "./dom.ts";
import type { Template } from "./types.ts";

interface ApiBuild {
  templateID: string;
  buildID: string;
  alias: string;
  tags: string[];
  status: string;
  reason: string | null;
  createdAt: number;
  updatedAt: number;
}

interface Builds {
  running: Record<string, { state: string; since?: number; message?: string }>;
  api: ApiBuild[];
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
  // An SDK build's log lines, from E2B's own status route.
  const openBuild = async (b: ApiBuild) => {
    logView.hidden = false;
    logView.textContent = "Loading…";
    try {
      const st = await api<{ logs: string[]; reason?: { message: string } }>(`/templates/${encodeURIComponent(b.templateID)}/builds/${encodeURIComponent(b.buildID)}/status`);
      logView.textContent = [...st.logs, ...(st.reason ? [`error: ${st.reason.message}`] : [])].join("\n") || "(no log lines yet)";
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
        builds.api.length
          ? h(
              "table",
              { class: "grid builds" },
              h("thead", {}, h("tr", {}, h("th", {}, "Template"), h("th", {}, "Status"), h("th", { class: "opt" }, "Started"), h("th", { class: "opt" }, "Build"), h("th", {}, "Log"))),
              h(
                "tbody",
                {},
                ...builds.api.map((b) =>
                  h(
                    "tr",
                    { "data-build": b.buildID },
                    h("td", {}, `${b.alias}:${b.tags.join(",")}`),
                    h("td", {}, badge(b.status), b.reason ? ` ${b.reason}` : ""),
                    h("td", { class: "opt" }, time(b.createdAt)),
                    h("td", { class: "mono opt" }, b.buildID),
                    h("td", {}, h("button", { type: "button", class: "link", onclick: () => openBuild(b) }, "Show")),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No builds through the API (Template.build()) since the daemon started."),
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
