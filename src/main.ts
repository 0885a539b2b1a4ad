// Entry point of the onebox binary: dispatches to the CLI subcommands.
import { runCli } from "./cli/index.ts";

// Everything onebox creates (data dir, database, layers, snapshots, logs) is private to root: the jail uids of
// other sandboxes are local users too (docs/architecture.md "Files on disk").
process.umask(0o077);

process.exitCode = await runCli(process.argv.slice(2));
