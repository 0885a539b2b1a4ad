// egressOf: a row's stored policy compiled once per distinct (allow_internet_access, network) and served from the
// cache after (compilePolicyCached); a row that no longer compiles denies all and is not remembered.
import { expect, test } from "bun:test";
import { egressOf } from "./egress.ts";

const row = (network: string | null, allowInternetAccess: boolean | null = null) => ({ id: "sbx", network, allowInternetAccess });
const ONLY_10 = JSON.stringify({ allowOut: ["203.0.113.10"], denyOut: ["0.0.0.0/0"] });

test("the same stored policy compiles once; another allow_internet_access is another policy", () => {
  const a = egressOf(row(ONLY_10));
  expect(a).toEqual({ allow: [{ base: 0xcb00710a, prefix: 32, size: 1 }], deny: [{ base: 0, prefix: 0, size: 2 ** 32 }], domains: [] });
  expect(egressOf(row(ONLY_10))).toBe(a);
  expect(egressOf(row(null))).toEqual({ allow: [], deny: [], domains: [] });
  expect(egressOf(row(null, false)).deny).toEqual([{ base: 0, prefix: 0, size: 2 ** 32 }]);
  expect(egressOf(row(null, true)).deny).toEqual([]);
});

test("a stored policy that no longer compiles denies all, every time", () => {
  const bad = JSON.stringify({ allowOut: ["example.com"] }); // a domain without deny-all: refused since
  expect(egressOf(row(bad)).deny).toEqual([{ base: 0, prefix: 0, size: 2 ** 32 }]);
  expect(egressOf(row("{not json")).deny).toEqual([{ base: 0, prefix: 0, size: 2 ** 32 }]);
});
