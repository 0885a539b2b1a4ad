// Tiny argument parser for the subcommands: --flag value, --flag=value, --bool, positionals.
import { envVar } from "../util/config.ts";

export interface Args {
  positionals: string[];
  flags: Map<string, string | true>;
  /** Every value of each flag given with one, in order (a repeated flag: `--net-allow-private A --net-allow-private B`). */
  all: Map<string, string[]>;
}

export function parseArgs(argv: string[], booleans: readonly string[] = []): Args {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  const all = new Map<string, string[]>();
  const set = (k: string, v: string) => {
    flags.set(k, v);
    all.set(k, [...(all.get(k) ?? []), v]);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    if (eq > 0) {
      set(a.slice(2, eq), a.slice(eq + 1));
    } else if (booleans.includes(a.slice(2))) {
      flags.set(a.slice(2), true);
    } else {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith("--")) throw new Error(`option ${a} needs a value`);
      set(a.slice(2), v);
      i++;
    }
  }
  return { positionals, flags, all };
}

/** Every value of a repeatable flag, or undefined when not given. */
export function strs(a: Args, name: string): string[] | undefined {
  return a.all.get(name);
}

export function str(a: Args, name: string): string | undefined {
  const v = a.flags.get(name);
  return typeof v === "string" ? v : undefined;
}

export function int(a: Args, name: string): number | undefined {
  const v = str(a, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`option --${name} must be an integer, got '${v}'`);
  return n;
}

export function bool(a: Args, name: string): boolean {
  return a.flags.get(name) === true;
}

export function dataDirOf(a: Args): string {
  return str(a, "data-dir") ?? envVar("ONEBOX_DATA_DIR") ?? "/var/lib/onebox";
}
