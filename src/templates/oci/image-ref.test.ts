import { expect, test } from "bun:test";
import { parseImageRef } from "./image-ref.ts";

test("image references: the registry is the credentials' key; anything else is refused before skopeo sees it", () => {
  expect(parseImageRef("debian:bookworm")).toEqual({ ref: "debian:bookworm", registry: "docker.io" });
  expect(parseImageRef("library/python:3.12-slim")).toEqual({ ref: "library/python:3.12-slim", registry: "docker.io" });
  expect(parseImageRef("docker://ghcr.io/org/app:v1")).toEqual({ ref: "ghcr.io/org/app:v1", registry: "ghcr.io" });
  expect(parseImageRef("127.0.0.1:5000/x")).toEqual({ ref: "127.0.0.1:5000/x", registry: "127.0.0.1:5000" });
  expect(parseImageRef("localhost/x@sha256:" + "a".repeat(64)).registry).toBe("localhost");
  for (const bad of ["", "a b", "x;rm -rf /", "--src-creds=a:b", "UPPER/case", "oci:/tmp/x", "x:tag:more"]) {
    expect(() => parseImageRef(bad)).toThrow("is not an image reference");
  }
});
