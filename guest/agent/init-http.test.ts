// Unit tests for /init's clock rule (e2b-protocol.md §3.4); setting the clock itself is not exercised on a shared host.
import { expect, test } from "bun:test";
import { clockNeedsFix } from "./init-http.ts";

test("clock is fixed only when >50 ms behind or >5 s ahead", () => {
  const t = 1_700_000_000_000;
  expect(clockNeedsFix(t, t)).toBe(false);
  expect(clockNeedsFix(t - 50, t)).toBe(false);
  expect(clockNeedsFix(t - 51, t)).toBe(true);
  expect(clockNeedsFix(t + 5000, t)).toBe(false);
  expect(clockNeedsFix(t + 5001, t)).toBe(true);
});
