// Tests the step cache keys: chained on the base and every step before, COPY keyed by its files, force skipping.
import { expect, test } from "bun:test";
import { baseHash, cachedPrefix, chain, stepHash } from "./step-hash.ts";
import type { Step } from "./schemas.ts";

const run = (cmd: string, user?: string): Step => ({ type: "RUN", args: user ? [cmd, user] : [cmd] });
const base = baseHash({ image: "127.0.0.1:5000/x" });

test("a step's key depends on the base, every earlier step, its args and a COPY's files", () => {
  const a = chain(base, [run("apt-get update"), run("echo hi")]);
  expect(chain(base, [run("apt-get update"), run("echo hi")])).toEqual(a);
  expect(chain(baseHash({ image: "127.0.0.1:5000/y" }), [run("apt-get update"), run("echo hi")])[1]).not.toBe(a[1]);
  expect(chain(base, [run("apt-get upgrade"), run("echo hi")])[1]).not.toBe(a[1]);
  expect(stepHash(base, run("a b"))).not.toBe(stepHash(base, { type: "RUN", args: ["a", "b"] }));
  expect(stepHash(base, run("x", "root"))).not.toBe(stepHash(base, run("x")));
  const copy = (h: string): Step => ({ type: "COPY", args: ["f", "/f", "", ""], filesHash: h });
  expect(stepHash(base, copy("1".repeat(64)))).not.toBe(stepHash(base, copy("2".repeat(64))));
  expect(baseHash({ templateId: "t1", createdAt: 1 })).not.toBe(baseHash({ templateId: "t1", createdAt: 2 }));
});

test("the cached prefix stops at the first miss or forced step, and force skips it all", () => {
  const steps = [run("a"), run("b"), { ...run("c"), force: true }, run("d")];
  const hashes = chain(base, steps);
  const all = () => true;
  expect(cachedPrefix(steps, hashes, false, all)).toBe(2);
  expect(cachedPrefix(steps, hashes, true, all)).toBe(0);
  expect(cachedPrefix(steps, hashes, false, (h) => h === hashes[0])).toBe(1);
  expect(cachedPrefix([run("a")], chain(base, [run("a")]), false, all)).toBe(1);
});
