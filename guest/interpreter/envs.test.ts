// Sandbox-global env vars from the real agent's GET /envs (X-Access-Token forwarded, §3.4, §4.4);
// this server is told the sandbox user does not exist, so kernels run as root in a temp dir.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestAgent, type RunningAgent } from "../agent/test-harness.ts";
import { debugSandbox, startInterpreter, type RunningInterpreter } from "./test-harness.ts";

const TOKEN = "interp-test-token";
let agent: RunningAgent;
let server: RunningInterpreter;

beforeAll(async () => {
  agent = await startTestAgent();
  const init = await agent.init({ envVars: { ONEBOX_GLOBAL: "from-envd", ONEBOX_SHARED: "global" }, accessToken: TOKEN });
  expect(init.status).toBe(204);
  server = await startInterpreter({ ONEBOX_ENVD_URL: agent.url, ONEBOX_INTERPRETER_USER: "onebox-no-such-user" });
}, 40_000);

afterAll(async () => {
  await server?.stop();
  await agent?.stop();
});

const read = 'import os\n(os.environ.get("ONEBOX_GLOBAL"), os.environ.get("ONEBOX_SHARED"))';

test("without the access token envd refuses /envs and the server carries on", async () => {
  const ex = await debugSandbox().runCode(read);
  expect(ex.error).toBeUndefined();
  expect(ex.text).toBe("(None, None)");
});

test("with the token, global envs apply; per-call envs override them for one call only", async () => {
  const sbx = debugSandbox(TOKEN);
  expect((await sbx.runCode(read)).text).toBe("('from-envd', 'global')");
  expect((await sbx.runCode(read, { envs: { ONEBOX_SHARED: "per-call" } })).text).toBe("('from-envd', 'per-call')");
  expect((await sbx.runCode(read)).text).toBe("('from-envd', 'global')"); // reset to the global value
});

test("bash contexts get the global envs too", async () => {
  const sbx = debugSandbox(TOKEN);
  const ex = await sbx.runCode('echo "$ONEBOX_GLOBAL"', { language: "bash" });
  expect(ex.logs.stdout.join("")).toBe("from-envd\n");
}, 20_000);

test("javascript contexts get the global envs and per-call ones on top", async () => {
  const sbx = debugSandbox(TOKEN);
  const read = "[process.env.ONEBOX_GLOBAL, process.env.ONEBOX_SHARED]";
  expect((await sbx.runCode(read, { language: "js", envs: { ONEBOX_SHARED: "per-call" } })).text).toBe("[ 'from-envd', 'per-call' ]");
  expect((await sbx.runCode(read, { language: "js" })).text).toBe("[ 'from-envd', 'global' ]");
}, 20_000);

test("without the sandbox user, kernels run as the server's user in a temp dir", async () => {
  const ex = await debugSandbox().runCode("import os\n(os.getuid() == " + process.getuid!() + ", os.getcwd())");
  expect(ex.text).toMatch(/^\(True, '\/tmp\/onebox-interpreter-[^']+'\)$/);
});
