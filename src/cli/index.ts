// CLI dispatcher: maps `onebox <command>` to the subcommand modules.
import pkg from "../../package.json" with { type: "json" };

const USAGE = `onebox ${pkg.version}: self-hosted E2B-compatible sandboxes on one KVM box

usage: onebox <command> [options]

commands:
  serve            run the API and data plane (default :3000)
  doctor           check this host: /dev/kvm, host kind, guest kernel
  --version        print the version
`;

export async function runCli(argv: string[]): Promise<number> {
  const [cmd] = argv;
  switch (cmd) {
    case "--version":
    case "version":
      console.log(`onebox ${pkg.version}`);
      return 0;
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
