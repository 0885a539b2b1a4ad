// The bounded reader's contract: lines split across chunks, a cap that throws before buffering past it,
// a body read that stops (and cancels the stream) at the cap or the deadline.
import { expect, test } from "bun:test";
import { BoundedReadError, LineReader, readCapped } from "./bounded-read.ts";

test("LineReader: lines split over chunks, several per chunk, the rest kept", () => {
  const r = new LineReader(16, "test");
  expect(r.push(Buffer.from("ab"))).toEqual([]);
  expect(r.push(Buffer.from("c\nde\nf")).map(String)).toEqual(["abc", "de"]);
  expect(r.push(Buffer.from("g\n")).map(String)).toEqual(["fg"]);
  expect(r.push(Buffer.from("1\n2\n3"), 1).map(String)).toEqual(["1"]);
  expect(String(r.rest())).toBe("2\n3");
});

test("LineReader: a line past the cap throws, with or without a newline in the chunk", () => {
  expect(() => new LineReader(4, "thing").push(Buffer.from("12345"))).toThrow("thing: a line longer than 4 bytes");
  expect(() => new LineReader(4, "thing").push(Buffer.from("12345\n"))).toThrow(BoundedReadError);
  const r = new LineReader(4, "thing");
  r.push(Buffer.from("12"));
  expect(() => r.push(Buffer.from("345"))).toThrow(BoundedReadError);
  expect(new LineReader(4, "thing").push(Buffer.from("1234\n")).map(String)).toEqual(["1234"]);
});

test("readCapped: returns a body under the cap; past the cap it cancels the stream", async () => {
  expect(new TextDecoder().decode(await readCapped(new Response("hello").body, 5, 1000, "t"))).toBe("hello");
  let cancelled = false;
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled++;
      c.enqueue(new Uint8Array(1024));
    },
    cancel() {
      cancelled = true;
    },
  });
  await expect(readCapped(endless, 10_000, 1000, "endless")).rejects.toThrow("endless: answer larger than 10000 bytes");
  expect(cancelled).toBe(true);
  expect(pulled).toBeLessThan(20);
});

test("readCapped: a body that never ends is cut at the deadline", async () => {
  let cancelled = false;
  const slow = new ReadableStream<Uint8Array>({
    async pull(c) {
      await Bun.sleep(50);
      c.enqueue(new Uint8Array(1));
    },
    cancel() {
      cancelled = true;
    },
  });
  const t0 = Date.now();
  await expect(readCapped(slow, 1 << 20, 300, "slow")).rejects.toThrow("slow: no complete answer within 300 ms");
  expect(Date.now() - t0).toBeLessThan(1000);
  expect(cancelled).toBe(true);
});
