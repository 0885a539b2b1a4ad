// Tests admission: budgets and the concurrent-create bound give 429-kind errors with Retry-After.
import { expect, test } from "bun:test";
import { Admission } from "./admission.ts";

const budget = { cpuBudget: 4, memoryBudgetMib: 2048, maxConcurrentCreates: 2, retryAfterSec: 3 };

test("admits within budget and refuses beyond it with retryAfter", async () => {
  let used = { cpus: 2, memoryMib: 1024 };
  const a = new Admission(budget, () => used);
  expect(await a.admit({ cpus: 2, memoryMib: 512 }, async () => "ok")).toBe("ok");
  used = { cpus: 3, memoryMib: 1024 };
  await expect(a.admit({ cpus: 2, memoryMib: 512 }, async () => "no")).rejects.toMatchObject({
    kind: "rate-limited",
    extra: { retryAfterSec: 3 },
  });
  used = { cpus: 0, memoryMib: 2000 };
  await expect(a.admit({ cpus: 1, memoryMib: 512 }, async () => "no")).rejects.toMatchObject({ kind: "rate-limited" });
});

test("bounds concurrent creates and frees the slot afterwards", async () => {
  const a = new Admission({ ...budget, cpuBudget: 100, memoryBudgetMib: 100000 }, () => ({ cpus: 0, memoryMib: 0 }));
  const gates: (() => void)[] = [];
  const slow = () => a.admit({ cpus: 1, memoryMib: 1 }, () => new Promise<void>((r) => gates.push(r)));
  const p1 = slow();
  const p2 = slow();
  await expect(a.admit({ cpus: 1, memoryMib: 1 }, async () => 0)).rejects.toMatchObject({ kind: "rate-limited" });
  for (const g of gates) g();
  await Promise.all([p1, p2]);
  expect(a.creating).toBe(0);
  expect(await a.admit({ cpus: 1, memoryMib: 1 }, async () => 7)).toBe(7);
});

test("two concurrent creates cannot both take the last room", async () => {
  const a = new Admission(budget, () => ({ cpus: 0, memoryMib: 0 }));
  let release!: () => void;
  const first = a.admit({ cpus: 3, memoryMib: 100 }, () => new Promise<void>((r) => (release = r)));
  await expect(a.admit({ cpus: 3, memoryMib: 100 }, async () => 0)).rejects.toMatchObject({ kind: "rate-limited" });
  release();
  await first;
});

test("waitForSlotMs: past the concurrent bound a create waits for a slot, in turn; the budget still refuses at once", async () => {
  const a = new Admission({ ...budget, cpuBudget: 100, memoryBudgetMib: 100000 }, () => ({ cpus: 0, memoryMib: 0 }));
  const gates: (() => void)[] = [];
  let running = 0;
  let most = 0;
  const slow = (i: number) =>
    a.admit(
      { cpus: 1, memoryMib: 1 },
      async () => {
        most = Math.max(most, ++running);
        await new Promise<void>((r) => gates.push(r));
        running--;
        return i;
      },
      { waitForSlotMs: 5000 },
    );
  const all = Promise.all([0, 1, 2, 3, 4].map(slow));
  await Bun.sleep(10);
  expect(a.creating).toBe(2); // three wait: none refused
  while (gates.length || a.creating) {
    gates.shift()?.();
    await Bun.sleep(5);
  }
  expect(await all).toEqual([0, 1, 2, 3, 4]);
  expect(most).toBe(2);
  // No slot within the wait: 429 after it.
  const held = a.admit({ cpus: 1, memoryMib: 1 }, () => new Promise<void>((r) => gates.push(r)));
  const held2 = a.admit({ cpus: 1, memoryMib: 1 }, () => new Promise<void>((r) => gates.push(r)));
  const t0 = Date.now();
  await expect(a.admit({ cpus: 1, memoryMib: 1 }, async () => 0, { waitForSlotMs: 100 })).rejects.toMatchObject({ kind: "rate-limited" });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
  // A full budget does not wait.
  const full = new Admission({ ...budget, cpuBudget: 1 }, () => ({ cpus: 1, memoryMib: 0 }));
  const t1 = Date.now();
  await expect(full.admit({ cpus: 1, memoryMib: 1 }, async () => 0, { waitForSlotMs: 5000 })).rejects.toThrow("host is full");
  expect(Date.now() - t1).toBeLessThan(50);
  for (const g of gates) g();
  await Promise.all([held, held2]);
});
