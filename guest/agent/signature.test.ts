// Unit tests for signed file URLs (e2b-protocol.md §3.5), including the spec's test vector.
import { expect, test } from "bun:test";
import { checkFileAccess, fileSignature } from "./signature.ts";

const TOKEN = "0tQG31xiMp0IOQfaz9dcwi72L1CPo8e0";

test("spec test vector", () => {
  expect(fileSignature("hello.txt", "read", "user", TOKEN)).toBe("v1_gUtH/s9YCJWgCizjfUxuWfhFE4QSydOWEIIvfLwDr6E");
});

test("access rules: no token, header, signature, expiry", () => {
  const url = (q: Record<string, string>) => new URL("http://x/files?" + new URLSearchParams(q));
  expect(checkFileAccess(url({ path: "a" }), "read", null, undefined)).toBeUndefined();
  expect(checkFileAccess(url({ path: "a" }), "read", TOKEN, TOKEN)).toBeUndefined();
  expect(checkFileAccess(url({ path: "a" }), "read", "nope", TOKEN)).toBeDefined();
  expect(checkFileAccess(url({ path: "a" }), "read", null, TOKEN)).toBe("missing signature query parameter");
  const good = fileSignature("hello.txt", "read", "user", TOKEN);
  expect(checkFileAccess(url({ path: "hello.txt", username: "user", signature: good }), "read", null, TOKEN)).toBeUndefined();
  expect(checkFileAccess(url({ path: "hello.txt", username: "user", signature: good }), "write", null, TOKEN)).toBe("invalid signature");
  const exp = 2_000_000_000;
  const timed = fileSignature("f", "write", "", TOKEN, exp);
  const q = { path: "f", signature: timed, signature_expiration: String(exp) };
  expect(checkFileAccess(url(q), "write", null, TOKEN, exp * 1000 - 1)).toBeUndefined();
  expect(checkFileAccess(url(q), "write", null, TOKEN, exp * 1000 + 1)).toBe("signature is already expired");
});
