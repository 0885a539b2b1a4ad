// bun run bench:net-slots [N]: network slot setup time and kernel memory per slot, in a network namespace of its own
// (src/net/testing/scenario-measure.ts). Last line JSON. The VM parts of issue 13's bench:net come with the device.
import { canRunNetns, runInNetns } from "../src/net/testing/run-in-netns.ts";

if (!canRunNetns) {
  console.error("bench:net-slots needs root, unshare and ip");
  process.exit(2);
}
const n = process.argv[2] ?? "200";
const { result } = await runInNetns<Record<string, number>>(`${import.meta.dir}/../src/net/testing/scenario-measure.ts`, [n], 300_000);
console.log(JSON.stringify(result));
