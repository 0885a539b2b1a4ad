// The dashboard's entry: the login (an API key, kept in this tab's sessionStorage), the navigation and the hash router.
import "@xterm/xterm/css/xterm.css";
import "./style.css";
import { api, session, whenUnauthorized } from "./api.ts";
import { failed, h, show } from "./dom.ts";
import { auditPage } from "./page-audit.ts";
import { keysPage } from "./page-keys.ts";
import { sandboxPage } from "./page-sandbox.ts";
import { sandboxesPage } from "./page-sandboxes.ts";
import { templatesPage } from "./page-templates.ts";
import { terminalPage } from "./page-terminal.ts";

const app = document.getElementById("app")!;
let leave: () => void = () => undefined;
let admin = false;

function login(message?: string): void {
  leave();
  leave = () => undefined;
  const key = h("input", { type: "password", name: "key", id: "key", autocomplete: "off", required: true, placeholder: "e2b_…" });
  const err = h("div", {}, message && failed(new Error(message)));
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const who = await api<{ admin: boolean }>("/onebox/whoami", { key: key.value.trim() });
          session.set(key.value.trim());
          admin = who.admin;
          if (!location.hash || location.hash === "#/login") location.hash = "#/sandboxes";
          route();
        } catch (e2) {
          show(err, failed(e2));
        }
      },
    },
    h("h1", {}, "onebox"),
    h("label", { for: "key" }, "API key"),
    key,
    h("button", { type: "submit" }, "Log in"),
    err,
    h("p", { class: "muted" }, "The key stays in this tab only. The admin key is in $DATA/admin-key."),
  );
  show(app, form);
  key.focus();
}

function nav(current: string): HTMLElement {
  const link = (href: string, label: string) => h("a", { href, class: current === href.slice(2).split("/")[0] ? "on" : "" }, label);
  return h(
    "nav",
    {},
    h("span", { class: "brand" }, "onebox"),
    link("#/sandboxes", "Sandboxes"),
    link("#/templates", "Templates"),
    admin && link("#/keys", "Keys"),
    admin && link("#/audit", "Audit"),
    h(
      "button",
      {
        type: "button",
        class: "link logout",
        onclick: () => {
          session.clear();
          location.hash = "#/login";
        },
      },
      "Log out",
    ),
  );
}

function route(): void {
  if (!session.key()) return login();
  leave();
  const [path = "", query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const main = h("main");
  show(app, nav(parts[0] ?? "sandboxes"), main);
  if (parts[0] === "sandboxes" && parts[1] && parts[2] === "terminal") leave = terminalPage(main, parts[1]);
  else if (parts[0] === "sandboxes" && parts[1]) leave = sandboxPage(main, parts[1]);
  else if (parts[0] === "templates") leave = templatesPage(main);
  else if (parts[0] === "keys") leave = keysPage(main);
  else if (parts[0] === "audit") leave = auditPage(main);
  else leave = sandboxesPage(main, new URLSearchParams(query));
}

whenUnauthorized(() => {
  session.clear();
  login("The key was refused (revoked?): log in again.");
});
addEventListener("hashchange", route);

// A reload keeps the session: ask again whether the key is the admin's.
if (session.key()) {
  api<{ admin: boolean }>("/onebox/whoami").then(
    (w) => {
      admin = w.admin;
      route();
    },
    () => route(), // a 401 went to the login already; another failure shows on the page
  );
} else login();
