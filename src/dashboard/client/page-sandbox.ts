// One sandbox: metadata, kill/pause/resume, the metrics chart, lifecycle events and the console log.
import { api } from "./api.ts";
import { chart } from "./charts.ts";
import { badge, bytes, failed, h, show, time } from "./dom.ts";
import type { Detail } from "./types.ts";

export function sandboxPage(root: HTMLElement, id: string): () => void {
  const path = `/sandboxes/${encodeURIComponent(id)}`;
  const status = h("p", { class: "status", role: "status" });
  let stopped = false;

  const act = async (label: string, method: string, p: string, body?: unknown) => {
    status.textContent = `${label}…`;
    try {
      await api(p, { method, body });
      status.textContent = `${label}: done`;
    } catch (e) {
      status.textContent = `${label} failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    await load();
  };

  const load = async () => {
    let d: Detail;
    try {
      d = await api<Detail>(`/onebox${path}`);
    } catch (e) {
      show(root, h("h1", {}, id), failed(e));
      return;
    }
    if (stopped) return;
    const s = d.sandbox;
    const live = s.state !== "ended";
    if (!live) clearInterval(timer); // an ended sandbox changes no more: keep the reader's scroll and selection
    const buttons = h(
      "div",
      { class: "actions" },
      s.state === "running" && h("a", { class: "button", href: `#/sandboxes/${encodeURIComponent(id)}/terminal` }, "Terminal"),
      s.state === "running" && h("button", { type: "button", onclick: () => act("Pause", "POST", `${path}/pause`) }, "Pause"),
      s.state === "paused" && h("button", { type: "button", onclick: () => act("Resume", "POST", `${path}/resume`, {}) }, "Resume"),
      live && h("button", { type: "button", class: "danger", onclick: () => confirm(`Kill sandbox ${id}?`) && act("Kill", "DELETE", path) }, "Kill"),
    );
    const fields: [string, string | Node][] = [
      ["State", badge(s.state)],
      ["Template", s.alias ? `${s.alias} (${s.templateID})` : s.templateID],
      ["Shape", `${s.cpuCount} vCPU, ${s.memoryMB} MiB, disk ${s.diskSizeMB} MiB`],
      ["Started", time(s.startedAt)],
      [live ? "Ends at" : "Ended", live ? time(s.endAt) : time(s.endedAt)],
      ["End reason", s.endReason ? `${s.endReason}${s.endDetail ? `: ${s.endDetail}` : ""}` : "—"],
      ["Created with key", s.keyId ?? "—"],
      ["envd", s.envdVersion],
      ...Object.entries(s.metadata).map(([k, v]) => [`metadata ${k}`, v] as [string, string]),
    ];
    const ts = d.metrics.map((m) => m.timestampUnix * 1000);
    show(
      root,
      h("div", { class: "bar" }, h("h1", { class: "mono" }, id), buttons),
      status,
      h("dl", { class: "meta" }, ...fields.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-field": k }, v)])),
      h("h2", {}, "Metrics"),
      h(
        "div",
        { class: "charts" },
        chart("CPU", ts, d.metrics.map((m) => m.cpuUsedPct), 100, (v) => `${v.toFixed(1)}%`),
        chart("Memory", ts, d.metrics.map((m) => m.memUsed), Math.max(1, ...d.metrics.map((m) => m.memTotal)), bytes),
      ),
      h("h2", {}, "Lifecycle"),
      h("ol", { class: "events" }, ...d.events.map((e) => h("li", {}, h("time", {}, time(e.at)), " ", h("b", {}, e.kind), e.detail ? ` ${e.detail}` : ""))),
      h("h2", {}, "Console"),
      h("pre", { class: "console", tabindex: 0 }, d.logs.filter((l) => l.source === "console").map((l) => l.message).join("\n") || "(empty)"),
    );
  };
  void load();
  const timer = setInterval(() => document.visibilityState === "visible" && !status.textContent?.endsWith("…") && void load(), 5000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
