// A terminal into a running sandbox: xterm.js (bundled) on a PTY opened over envd's RPCs (envd-pty.ts) with the
// sandbox's envd token, which GET /sandboxes/{id} gives to the API key as it gives it to an SDK.
import { Terminal } from "@xterm/xterm";
import { api } from "./api.ts";
import { failed, h, show } from "./dom.ts";
import { openPty, type Pty } from "./envd-pty.ts";

/** Columns and rows that fit `el` with the terminal's cell size (what xterm's fit addon computes). */
function fit(term: Terminal, el: HTMLElement): { cols: number; rows: number } {
  const cell = el.querySelector(".xterm-rows > div")?.getBoundingClientRect();
  const cw = cell && cell.width > 0 ? cell.width / Math.max(1, term.cols) : 9;
  const ch = cell && cell.height > 0 ? cell.height : 17;
  return { cols: Math.max(20, Math.floor((el.clientWidth - 4) / cw)), rows: Math.max(8, Math.floor((el.clientHeight - 4) / ch)) };
}

export function terminalPage(root: HTMLElement, id: string): () => void {
  const box = h("div", { class: "term", "data-testid": "terminal" });
  const status = h("p", { class: "status", role: "status" }, "Connecting…");
  show(root, h("div", { class: "bar" }, h("h1", {}, "Terminal ", h("a", { class: "mono", href: `#/sandboxes/${encodeURIComponent(id)}` }, id))), status, box);
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000 });
  term.open(box);
  let pty: Pty | null = null;
  let closed = false;
  const onResize = () => {
    const s = fit(term, box);
    term.resize(s.cols, s.rows);
    void pty?.resize(s.cols, s.rows).catch(() => undefined);
  };
  void (async () => {
    try {
      const sb = await api<{ envdAccessToken?: string }>(`/sandboxes/${encodeURIComponent(id)}`);
      const size = fit(term, box);
      term.resize(size.cols, size.rows);
      pty = await openPty(id, sb.envdAccessToken, size, (d) => term.write(d));
      if (closed) return void pty.kill();
      status.textContent = `Connected (pid ${pty.pid})`;
      const enc = new TextEncoder();
      term.onData((s) => void pty?.send(enc.encode(s)).catch((e: Error) => (status.textContent = `Input lost: ${e.message}`)));
      addEventListener("resize", onResize);
      term.focus();
      status.textContent = `Disconnected: ${await pty.done}`;
    } catch (e) {
      show(status, failed(e));
    }
  })();
  return () => {
    closed = true;
    removeEventListener("resize", onResize);
    void pty?.kill();
    term.dispose();
  };
}
