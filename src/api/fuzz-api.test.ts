// Runs the API fuzzer (scripts/fuzz-api.ts) for a short fixed-seed run in CI: no crash, no undocumented 5xx,
// JSON errors only, fds and RSS back near the baseline.
import { expect, test } from "bun:test";
import { join } from "node:path";

const script = join(import.meta.dir, "../../scripts/fuzz-api.ts");
/* CI: fixed seed, 2000 requests (~5-10 s here). By hand: bun run fuzz:api --count 100000 --seed N. */
const SEED = process.env.API_FUZZ_SEED ?? "1";
const COUNT = process.env.API_FUZZ_COUNT ?? "2000";

test("API fuzzer: every route, random and mutated requests (fixed seed)", async () => {
  // A separate process: the fuzzer measures its own fds and RSS, which this test runner would blur.
  const p = Bun.spawn([process.execPath, script, "--count", COUNT, "--seed", SEED], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const lines = out.trimEnd().split("\n");
  console.log(lines.filter((l) => !l.startsWith("  ")).join("\n")); // coverage summary for the CI log
  if (code !== 0) console.error(out, err.split("\n").slice(-40).join("\n"));
  const last = JSON.parse(lines.at(-1) ?? "{}") as { ok?: boolean; requests?: number; routes?: number; routesHit?: number };
  expect(last.requests).toBe(Number(COUNT));
  expect(last.routesHit).toBe(last.routes);
  expect(last.ok).toBe(true);
  expect(code).toBe(0);
}, 180_000);
