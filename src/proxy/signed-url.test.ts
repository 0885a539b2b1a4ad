// Tests the signed-URL signature against the spec's vector and routing by signature.
import { expect, test } from "bun:test";
import { fileSignature, sandboxForSignedUrl } from "./signed-url.ts";

test("matches the spec §3.5 test vector", async () => {
  expect(await fileSignature("hello.txt", "read", "user", "0tQG31xiMp0IOQfaz9dcwi72L1CPo8e0")).toBe(
    "v1_gUtH/s9YCJWgCizjfUxuWfhFE4QSydOWEIIvfLwDr6E",
  );
});

test("routes a signed URL to the sandbox whose token signed it, op and expiry included", async () => {
  const sig = await fileSignature("/home/user/a.txt", "write", "", "tokB", "1700000000");
  const url = new URL(
    `http://localhost:3000/files?path=${encodeURIComponent("/home/user/a.txt")}&signature=${encodeURIComponent(sig)}&signature_expiration=1700000000`,
  );
  const cands = [
    { id: "a", token: "tokA" },
    { id: "b", token: "tokB" },
  ];
  expect(await sandboxForSignedUrl(url, "POST", cands)).toBe("b");
  // Same URL as a read: a different op, so no sandbox matches.
  expect(await sandboxForSignedUrl(url, "GET", cands)).toBeNull();
  expect(await sandboxForSignedUrl(new URL("http://x/files?path=a"), "GET", cands)).toBeNull();
});
