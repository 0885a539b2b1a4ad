// CLI dispatcher: maps `onebox <command>` to the subcommand modules.
import pkg from "../../package.json" with { type: "json" };

const USAGE = `onebox ${pkg.version}: self-hosted E2B-compatible sandboxes on one KVM box

usage: onebox <command> [options]

commands:
  serve            run the API and data plane (default :3000); --help for options
  sandbox          ls [--all] | info ID | logs ID | kill ID
  template         ls | add --name N --from DIR --kernel K | rm ID
  keys             create [--name N] | list | revoke ID|NAME
  audit            export [--since 24h | ISO time]: the audit log as JSON lines
  doctor           check this host: /dev/kvm, host kind, guest kernel
  --version        print the version
`;

export async function runCli(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "--version":
    case "version":
      console.log(`onebox ${pkg.version}`);
      return 0;
    case "doctor": return (await import("./doctor.ts")).runDoctor(argv.slice(1));
    case "serve":
      return guard(() => import("./serve.ts").then((m) => m.serveCommand(rest)));
    case "sandbox":
    case "sandboxes":
      return guard(() => import("./sandbox.ts").then((m) => m.sandboxCommand(rest)));
    case "template":
    case "templates":
      return guard(() => import("./template.ts").then((m) => m.templateCommand(rest)));
    case "keys":
      return guard(() => import("./keys.ts").then((m) => m.keysCommand(rest)));
    case "audit":
      return guard(() => import("./audit.ts").then((m) => m.auditCommand(rest)));
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      console.error(`onebox: unknown command '${cmd}'. Run 'onebox --help' for the list.`);
      return 2;
  }
}

/** Subcommands throw typed errors whose messages say what to do: print them, exit non-zero. */
async function guard(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    console.error(`onebox: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
