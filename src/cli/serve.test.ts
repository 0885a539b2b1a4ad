// `onebox serve`'s flags into the daemon's config: the repeatable --net-allow-private (and its variable).
import { afterEach, expect, test } from "bun:test";
import { serveConfig } from "./serve.ts";

afterEach(() => delete process.env.ONEBOX_NET_ALLOW_PRIVATE);

test("--net-allow-private is repeatable; ONEBOX_NET_ALLOW_PRIVATE is a comma list the flags override; default none", () => {
  expect(serveConfig([]).netAllowPrivate).toEqual([]);
  expect(serveConfig(["--net-allow-private", "10.1.0.0/16", "--net-allow-private=192.168.5.7"]).netAllowPrivate).toEqual(["10.1.0.0/16", "192.168.5.7"]);
  process.env.ONEBOX_NET_ALLOW_PRIVATE = "172.16.0.0/12, 10.2.0.0/16";
  expect(serveConfig([]).netAllowPrivate).toEqual(["172.16.0.0/12", "10.2.0.0/16"]);
  expect(serveConfig(["--net-allow-private", "10.1.0.0/16"]).netAllowPrivate).toEqual(["10.1.0.0/16"]);
});

test("a value that is not an IPv4 address or CIDR range is refused", () => {
  expect(() => serveConfig(["--net-allow-private", "intranet.example"])).toThrow("an IPv4 address or CIDR range");
  expect(() => serveConfig(["--net-allow-private", "10.0.0.0/33"])).toThrow("an IPv4 address or CIDR range");
  expect(() => serveConfig(["--net-allow-private", "10.0.0.256"])).toThrow("an IPv4 address or CIDR range");
});
