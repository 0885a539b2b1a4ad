// Tests the open-request counter: per-address 429, total 503, idempotent release.
import { expect, test } from "bun:test";
import { ConnLimits } from "./conn-limits.ts";

test("per address, then in total; a release frees exactly one place, once", async () => {
  const l = new ConnLimits(3, 2);
  const a1 = l.acquire("a") as () => void;
  const a2 = l.acquire("a") as () => void;
  const a3 = l.acquire("a");
  expect(a3).toBeInstanceOf(Response);
  expect((a3 as Response).status).toBe(429);
  const b1 = l.acquire("b") as () => void;
  const b2 = l.acquire("b");
  expect((b2 as Response).status).toBe(503);
  expect(((await (b2 as Response).json()) as { message: string }).message).toContain("--max-connections");
  a1();
  a1();
  expect(l.held("a")).toBe(1);
  expect(l.held()).toBe(2);
  a2();
  b1();
  expect(l.held()).toBe(0);
  expect(typeof l.acquire("a")).toBe("function");
});
