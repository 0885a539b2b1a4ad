// Unit tests for GET /files helpers: Accept-Encoding negotiation and byte ranges (e2b-protocol.md §3.4).
import { expect, test } from "bun:test";
import { negotiateEncoding, parseRange } from "./files-http.ts";

test("Accept-Encoding negotiation", () => {
  expect(negotiateEncoding("")).toBe("");
  expect(negotiateEncoding("gzip")).toBe("gzip");
  expect(negotiateEncoding("gzip, deflate, br, zstd")).toBe("gzip");
  expect(negotiateEncoding("br")).toBe("");
  expect(negotiateEncoding("identity")).toBe("");
  expect(negotiateEncoding("gzip;q=0")).toBe("");
  expect(negotiateEncoding("identity;q=1, gzip;q=0.5")).toBe("");
  expect(negotiateEncoding("*;q=0, gzip")).toBe("gzip");
  expect(negotiateEncoding("identity;q=0, *")).toBe("gzip");
  expect(negotiateEncoding("identity;q=0, br")).toBeUndefined();
});

test("byte ranges", () => {
  expect(parseRange(null, 10)).toBeUndefined();
  expect(parseRange("bytes=2-5", 10)).toEqual({ start: 2, end: 5 });
  expect(parseRange("bytes=7-", 10)).toEqual({ start: 7, end: 9 });
  expect(parseRange("bytes=-3", 10)).toEqual({ start: 7, end: 9 });
  expect(parseRange("bytes=5-100", 10)).toEqual({ start: 5, end: 9 });
  expect(parseRange("bytes=10-", 10)).toBeNull();
  expect(parseRange("bytes=0-1,3-4", 10)).toBeUndefined();
});
