// conntrackDeleteDenied off the event loop: the dump runs on the library's thread while the loop goes on, and a burst
// of deletions larger than the library's job table (64) all complete (the ones over it wait for a free job).
// Addresses from TEST-NET-3 that no flow of this host has: nothing is deleted.
import { expect, test } from "bun:test";
import { conntrackDeleteDenied } from "./conntrack.ts";

const ALL = [{ base: 0, prefix: 0, size: 2 ** 32 }];
const src = (i: number) => (203 << 24) | (0 << 16) | (113 << 8) | (100 + i);

test("a burst of 100 deletions completes, each with its count, and the event loop ran meanwhile", async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    const counts = await Promise.all(Array.from({ length: 100 }, (_, i) => conntrackDeleteDenied(src(i), [], ALL)));
    expect(counts).toEqual(Array.from({ length: 100 }, () => 0));
  } finally {
    clearInterval(timer);
  }
  expect(ticks).toBeGreaterThan(0);
});

test("nothing denied: no dump at all", async () => {
  expect(await conntrackDeleteDenied(src(0), ALL, [])).toBe(0);
});
