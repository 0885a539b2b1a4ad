// `onebox keys create|list|revoke`: manage API keys in the database directly (daemon running or not).
import { openState } from "../store/index.ts";
import { bool, dataDirOf, parseArgs, str } from "./args.ts";

const USAGE = `usage: onebox keys create [--name NAME] [--json]
       onebox keys list [--json]
       onebox keys revoke ID|NAME
options: --data-dir DIR (default /var/lib/onebox)`;

export async function keysCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ["json", "help"]);
  const [sub, target] = a.positionals;
  if (!sub || bool(a, "help")) {
    console.log(USAGE);
    return sub ? 0 : 2;
  }
  const state = openState(dataDirOf(a));
  try {
    switch (sub) {
      case "create": {
        const { key, info } = state.keys.create(str(a, "name") ?? "key");
        if (bool(a, "json")) console.log(JSON.stringify({ ...info, key }));
        else console.log(`${key}\n(id ${info.id}, name ${info.name}; shown only now: store it safely)`);
        return 0;
      }
      case "list":
      case "ls": {
        const keys = state.keys.list();
        if (bool(a, "json")) {
          console.log(JSON.stringify(keys));
          return 0;
        }
        console.log(["ID".padEnd(14), "NAME".padEnd(16), "PREFIX".padEnd(12), "CREATED".padEnd(25), "STATUS"].join(" "));
        for (const k of keys) {
          const status = k.revokedAt ? `revoked ${new Date(k.revokedAt).toISOString()}` : "active";
          console.log([k.id.padEnd(14), k.name.padEnd(16), (k.prefix + "…").padEnd(12), new Date(k.createdAt).toISOString().padEnd(25), status].join(" "));
        }
        return 0;
      }
      case "revoke": {
        if (!target) {
          console.error("onebox keys revoke: name the key by id or name (see `onebox keys list`)");
          return 2;
        }
        const n = state.keys.revoke(target);
        if (n === 0) {
          console.error(`onebox keys revoke: no active key with id or name '${target}' (see \`onebox keys list\`)`);
          return 1;
        }
        console.log(`revoked ${n} key${n > 1 ? "s" : ""}`);
        return 0;
      }
      default:
        console.error(`onebox keys: unknown subcommand '${sub}'\n${USAGE}`);
        return 2;
    }
  } finally {
    state.close();
  }
}
