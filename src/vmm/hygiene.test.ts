// The clone-hygiene message as the guest's control parser expects it (guest/protocol.ts).
import { expect, test } from "bun:test";
import { HYGIENE_ENTROPY_BYTES, hygieneLine } from "./hygiene.ts";

test("hygiene line: one JSON object with an exact integer time_ns, fresh entropy, id and hostname", () => {
  const before = BigInt(Date.now()) * 1_000_000n;
  const a = hygieneLine({ id: "sbx-1", hostname: "clone1" });
  const b = hygieneLine({ id: "sbx-2" });
  expect(a.endsWith("}\n")).toBe(true);
  const ta = BigInt(/"time_ns":(\d+)\}/.exec(a)?.[1] ?? "0");
  expect(ta >= before && ta % 1_000_000n === 0n).toBe(true); // exact: not rounded through a double
  const ja = JSON.parse(a);
  expect(ja.op).toBe("hygiene");
  expect(ja.id).toBe("sbx-1");
  expect(ja.hostname).toBe("clone1");
  expect(Buffer.from(ja.entropy, "base64").length).toBe(HYGIENE_ENTROPY_BYTES);
  expect(JSON.parse(b).entropy).not.toBe(ja.entropy);
  expect(JSON.parse(b).hostname).toBeUndefined();
});
