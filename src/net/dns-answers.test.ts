// Reading A records from DNS responses: compressed names, CNAME chains, other types skipped, errors and truncation.
import { expect, test } from "bun:test";
import { readARecords } from "./dns-answers.ts";

const name = (n: string) => [...n.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]), 0];
const u16 = (n: number) => [n >> 8, n & 255];
const u32 = (n: number) => [...u16(n >>> 16), ...u16(n & 0xffff)];
const rr = (owner: number[], type: number, ttl: number, rdata: number[]) => [...owner, ...u16(type), ...u16(1), ...u32(ttl), ...u16(rdata.length), ...rdata];

function response(answers: number[][], rcode = 0): Uint8Array {
  const q = [...name("www.example.com"), ...u16(1), ...u16(1)];
  return new Uint8Array([0xab, 0xcd, 0x81, 0x80 | rcode, ...u16(1), ...u16(answers.length), 0, 0, 0, 0, ...q, ...answers.flat()]);
}

test("A records after a CNAME, with compressed and plain owner names; other types skipped", () => {
  const ptr = [0xc0, 0x0c];
  const msg = response([
    rr(ptr, 5, 300, name("edge.cdn.example")),
    rr(name("edge.cdn.example"), 1, 60, [203, 0, 113, 10]),
    rr(ptr, 28, 60, new Array(16).fill(0)),
    rr(ptr, 1, 0xffffffff, [198, 51, 100, 7]),
  ]);
  expect(readARecords(msg)).toEqual([{ addr: 0xcb00710a, ttl: 60 }, { addr: 0xc6336407, ttl: 0xffffffff }]);
});

test("errors, queries and truncated messages give what was read, never throw", () => {
  expect(readARecords(response([rr([0xc0, 0x0c], 1, 60, [1, 2, 3, 4])], 3))).toEqual([]); // NXDOMAIN
  const ok = response([rr([0xc0, 0x0c], 1, 60, [1, 2, 3, 4]), rr([0xc0, 0x0c], 1, 60, [5, 6, 7, 8])]);
  const query = ok.slice();
  query[2] = 0x01;
  expect(readARecords(query)).toEqual([]);
  expect(readARecords(ok.subarray(0, ok.length - 2))).toEqual([{ addr: 0x01020304, ttl: 60 }]);
  for (let n = 0; n < ok.length; n++) expect(() => readARecords(ok.subarray(0, n))).not.toThrow();
  const loop = response([rr([0xc0, 0x0c], 1, 60, [1, 2, 3, 4])]);
  loop[12] = 0x40; // a label length over 63 in the question
  expect(readARecords(loop)).toEqual([]);
});
