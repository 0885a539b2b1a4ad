// The agent against an older official SDK (e2b 2.45.0): the envd wire protocol did not change (e2b-protocol.md §0).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { CommandExitError, Sandbox } from "e2b-2.45";
import { ENVD_VERSION } from "../protocol.ts";
import { ensureTestUser, startTestAgent, type RunningAgent } from "./test-harness.ts";

let agent: RunningAgent;

beforeAll(async () => {
  ensureTestUser();
  agent = await startTestAgent();
  expect((await agent.init({ defaultUser: "user", accessToken: "compat-token" })).status).toBe(204);
});
afterAll(async () => agent.stop());

test("e2b 2.45: commands, files, signed URLs", async () => {
  const Ctor = Sandbox as unknown as new (o: Record<string, unknown>) => Sandbox;
  const sbx = new Ctor({ sandboxId: "compat", envdVersion: ENVD_VERSION, envdAccessToken: "compat-token", debug: true, sandboxUrl: agent.url });
  expect((await sbx.commands.run("echo compat; whoami")).stdout).toBe("compat\nuser\n");
  expect(await sbx.commands.run("exit 7").catch((e) => e)).toBeInstanceOf(CommandExitError);
  await sbx.files.write(`${agent.dir}/c.txt`, "2.45");
  expect(await sbx.files.read(`${agent.dir}/c.txt`)).toBe("2.45");
  expect((await sbx.files.list(agent.dir)).map((e) => e.name)).toContain("c.txt");
  expect(await (await fetch(await sbx.downloadUrl(`${agent.dir}/c.txt`))).text()).toBe("2.45");
});
