// Entry point of the onebox binary: dispatches to the CLI subcommands.
import { runCli } from "./cli/index.ts";

process.exitCode = await runCli(process.argv.slice(2));
