// `onebox sandbox ls|info|kill|logs`: reads the database directly; kill goes through the daemon's API.
import { sandboxLogs } from "../sandbox/logs.ts";
import { openState } from "../store/index.ts";
import { parseConfig } from "../util/config.ts";
import { daemonAccess } from "./daemon-access.ts";
import { bool, dataDirOf, parseArgs } from "./args.ts";

const USAGE = `usage: onebox sandbox ls [--all] [--json]
       onebox sandbox info ID [--json]
       onebox sandbox logs ID
       onebox sandbox kill ID [--url http://127.0.0.1:3000] [--api-key KEY]
options: --data-dir DIR (default /var/lib/onebox)`;

const iso = (ms: number | null) => (ms ? new Date(ms).toISOString() : "-");

export async function sandboxCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ["json", "all", "help"]);
  const [sub, id] = a.positionals;
  if (!sub || bool(a, "help")) {
    console.log(USAGE);
    return sub ? 0 : 2;
  }
  const dataDir = dataDirOf(a);
  if (sub === "kill") return killViaDaemon(a, dataDir, id);
  const state = openState(dataDir);
  try {
    switch (sub) {
      case "ls":
      case "list": {
        const rows = bool(a, "all") ? state.sandboxes.inStates(null) : state.sandboxes.live().reverse();
        if (bool(a, "json")) {
          console.log(JSON.stringify(rows));
          return 0;
        }
        console.log(["ID".padEnd(22), "TEMPLATE".padEnd(22), "STATE".padEnd(9), "STARTED".padEnd(25), "END".padEnd(25), "REASON"].join(" "));
        for (const r of rows) {
          const end = r.endedAt ?? r.endAt;
          console.log([r.id.padEnd(22), (r.alias ?? r.templateId).padEnd(22), r.state.padEnd(9), iso(r.startedAt).padEnd(25), iso(end).padEnd(25), r.endReason ?? ""].join(" "));
        }
        return 0;
      }
      case "info": {
        const r = id ? state.sandboxes.get(id) : undefined;
        if (!r) {
          console.error(`onebox sandbox info: no sandbox '${id ?? ""}' (see \`onebox sandbox ls --all\`)`);
          return 1;
        }
        const { envdAccessToken: _t, envVars: _e, ...shown } = r;
        console.log(bool(a, "json") ? JSON.stringify(shown) : JSON.stringify(shown, null, 2));
        return 0;
      }
      case "logs": {
        if (!id || !state.sandboxes.get(id)) {
          console.error(`onebox sandbox logs: no sandbox '${id ?? ""}' (see \`onebox sandbox ls --all\`)`);
          return 1;
        }
        const config = parseConfig({ dataDir });
        for (const l of sandboxLogs(state, config, id, 100_000)) console.log(`${l.timestamp} ${l.source.padEnd(9)} ${l.message}`);
        return 0;
      }
      default:
        console.error(`onebox sandbox: unknown subcommand '${sub}'\n${USAGE}`);
        return 2;
    }
  } finally {
    state.close();
  }
}

/** The daemon owns the VM processes, so kill asks it (DELETE /sandboxes/{id}). */
async function killViaDaemon(a: ReturnType<typeof parseArgs>, dataDir: string, id: string | undefined): Promise<number> {
  if (!id) {
    console.error("onebox sandbox kill: name the sandbox id (see `onebox sandbox ls`)");
    return 2;
  }
  const access = daemonAccess(a, dataDir, "onebox sandbox kill");
  if (!access) return 2;
  const { url, key } = access;
  let res: Response;
  try {
    res = await fetch(`${url}/sandboxes/${encodeURIComponent(id)}`, { method: "DELETE", headers: { "x-api-key": key } });
  } catch (e) {
    console.error(`onebox sandbox kill: cannot reach the daemon at ${url} (${String(e)}): is \`onebox serve\` running?`);
    return 1;
  }
  if (res.status === 204) {
    console.log(`killed ${id}`);
    return 0;
  }
  console.error(`onebox sandbox kill: ${res.status} ${await res.text()}`);
  return 1;
}
