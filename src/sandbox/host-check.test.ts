// Tests the host problems that make create answer 503: each names the problem and the fix.
import { expect, test } from "bun:test";
import { parseConfig } from "../util/config.ts";
import { hostProblem } from "./host-check.ts";

test("no /dev/kvm, PVM without a PVM kernel, PVM kernel missing, hardware KVM", () => {
  const c = parseConfig({});
  expect(hostProblem(c, "none")).toContain("/dev/kvm");
  expect(hostProblem(c, "pvm")).toContain("--pvm-kernel");
  expect(hostProblem(c, "pvm")).toContain("CONFIG_PVM_GUEST=y");
  expect(hostProblem(parseConfig({ pvmKernel: "/nonexistent/vmlinuz" }), "pvm")).toContain("does not exist");
  expect(hostProblem(parseConfig({ pvmKernel: "/proc/self/exe" }), "pvm")).toBeNull();
  expect(hostProblem(c, "kvm")).toBeNull();
});
