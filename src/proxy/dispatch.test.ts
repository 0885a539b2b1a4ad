// Tests dispatch: header and Host routing, the sandbox domain (DNS rebinding), and malformed Host headers.
import { expect, test } from "bun:test";
import { classify, hostnameOf, requestUrl } from "./dispatch.ts";

const req = (host: string, headers: Record<string, string> = {}) => new Request(`http://${host}/x`, { headers: { host, ...headers } });
const plane = (host: string, domain?: string) => {
  const r = req(host);
  return classify(r, requestUrl(r)!, domain);
};

test("the <port>-<id>. Host form routes only under the sandbox domain", () => {
  expect(plane("8000-abc.localhost:3000")).toEqual({ plane: "data", sandboxId: "abc", port: 8000 });
  expect(plane("8000-ABC.LOCALHOST")).toEqual({ plane: "data", sandboxId: "abc", port: 8000 });
  // A rebound attacker's name, or a cloud IDE's, is not a sandbox route.
  expect(plane("8000-abc.attacker.example")).toEqual({ plane: "control" });
  expect(plane("3000-workspace.ws.gitpod.io")).toEqual({ plane: "control" });
  expect(plane("8000-abc.sbx.example.com", "sbx.example.com:443")).toEqual({ plane: "data", sandboxId: "abc", port: 8000 });
  expect(plane("8000-abc.localhost", "sbx.example.com")).toEqual({ plane: "control" });
  expect(plane("8000-abc.x.sbx.example.com", "sbx.example.com")).toEqual({ plane: "control" });
});

test("header routing is unchanged by the Host", () => {
  const r = req("anything.example", { "E2b-Sandbox-Id": "abc", "E2b-Sandbox-Port": "49983" });
  expect(classify(r, requestUrl(r)!)).toEqual({ plane: "data", sandboxId: "abc", port: 49983 });
});

test("hostnameOf drops ports, keeps IPv6 literals", () => {
  expect(hostnameOf("Example.COM:3000")).toBe("example.com");
  expect(hostnameOf("[::1]:3000")).toBe("[::1]");
  expect(hostnameOf("localhost")).toBe("localhost");
});

test("a malformed Host has no URL (the server answers 400)", () => {
  for (const host of ["a%b", "a b", "x/y", "a:b:c", ""]) {
    const r = new Request("http://localhost/x", { headers: { host } });
    expect(requestUrl(r)).toBeNull();
  }
  expect(requestUrl(new Request("http://localhost/x", { headers: { host: "127.0.0.1:3000" } }))?.pathname).toBe("/x");
});
