// The daemon's reads of the guest agent's answers, as a hostile guest would attack them: a /metrics or /init
// answer of 400 MiB, one that never ends, and one of the wrong shape. The fake agent is a raw HTTP server on
// the vmm's forward socket path (it stands in for the tenant's guest, not for onebox's agent).
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_HYGIENE_HEADER, ENVD_PORT } from "../../guest/protocol.ts";
import { forwardPath } from "../vmm/index.ts";
import { flood, listenUnix, peakRssGrowth } from "../util/test-hostile-peer.ts";
import { AgentClient } from "./agent-client.ts";

let runDir: string;
let srv: Server | undefined;
beforeEach(() => {
  runDir = mkdtempSync(join(tmpdir(), "onebox-agent-"));
});
afterEach(() => {
  srv?.close();
  srv = undefined;
  rmSync(runDir, { recursive: true, force: true });
});

/** A guest agent that answers every request with `answer(sock)` once the request head arrived. */
async function fakeAgent(answer: (s: Socket) => void): Promise<AgentClient> {
  srv = await listenUnix(forwardPath(runDir, ENVD_PORT), (s) => {
    let head = "";
    s.on("error", () => {});
    s.on("data", function onData(c: Buffer) {
      head += c.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      s.off("data", onData);
      answer(s);
    });
  });
  return new AgentClient(runDir);
}

const HEAD = (len: number | null) =>
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${len === null ? "transfer-encoding: chunked" : `content-length: ${len}`}\r\n\r\n`;

test("/metrics answered with 400 MiB: refused at the cap, daemon RSS grows < 64 MiB", async () => {
  let sent: Promise<number> = Promise.resolve(0);
  const agent = await fakeAgent((s) => {
    s.write(HEAD(400 << 20) + '{"ts":1,"pad":"');
    sent = flood(s, 400 << 20);
  });
  const { result, growthMiB, ms } = await peakRssGrowth(() => agent.metrics(null));
  console.log(`metrics flood: ${growthMiB.toFixed(1)} MiB RSS growth, ${ms} ms, guest wrote ${(await sent) >> 20} MiB`);
  expect(result).toBeInstanceOf(Error);
  expect((result as Error).message).toContain("guest agent /metrics: answer larger than");
  expect(growthMiB).toBeLessThan(64);
}, 30_000);

test("/init answered with 400 MiB: each try stops at the cap, daemon RSS grows < 64 MiB", async () => {
  const agent = await fakeAgent((s) => {
    s.write(HEAD(400 << 20));
    void flood(s, 400 << 20);
  });
  const { result, growthMiB, ms } = await peakRssGrowth(() => agent.init({ envVars: {}, defaultUser: "user" }));
  console.log(`init flood: ${growthMiB.toFixed(1)} MiB RSS growth, ${ms} ms`);
  expect(result).toBeInstanceOf(Error);
  expect((result as Error).message).toContain("guest agent /init: answer larger than");
  expect(growthMiB).toBeLessThan(64);
}, 60_000);

test("/metrics that never ends (a chunked trickle): the deadline ends the wait", async () => {
  const agent = await fakeAgent((s) => {
    s.write(HEAD(null));
    const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write("1\r\n \r\n")), 50);
  });
  const t0 = Date.now();
  await expect(agent.metrics(null)).rejects.toThrow(/metrics/);
  expect(Date.now() - t0).toBeLessThan(5000);
}, 10_000);

test("/metrics of the wrong shape is refused by the schema, not passed on to the client", async () => {
  const body = JSON.stringify({ ts: "now", cpu_count: -1, mem_total: { $gt: 1 } });
  const agent = await fakeAgent((s) => s.end(HEAD(Buffer.byteLength(body)) + body));
  await expect(agent.metrics(null)).rejects.toThrow("the guest agent's /metrics answer is malformed");
});

test("/metrics of the agent's shape is returned", async () => {
  const m = { ts: 1, cpu_count: 2, cpu_used_pct: 1.5, mem_total: 100, mem_used: 50, mem_cache: 3, disk_used: 1, disk_total: 2 };
  const body = JSON.stringify(m);
  const agent = await fakeAgent((s) => s.end(HEAD(Buffer.byteLength(body)) + body));
  expect(await agent.metrics(null)).toEqual(m);
});

test("/init with a clone's hygiene: applied only when the agent says so; an agent older than it is not taken at its 204", async () => {
  const hygiene = { timeNs: "1900000000000000000", entropy: "aGk=", id: "sbx", hostname: "sbx" };
  let confirm = false;
  const agent = await fakeAgent((s) =>
    s.end(`HTTP/1.1 204 No Content\r\n${confirm ? `${AGENT_HYGIENE_HEADER}: applied\r\n` : ""}connection: close\r\n\r\n`),
  );
  // The older agent's 204 (no header): the caller must send the hygiene over the control channel.
  expect(await agent.init({ envVars: {}, defaultUser: "user" }, undefined, hygiene)).toBe(false);
  confirm = true;
  expect(await agent.init({ envVars: {}, defaultUser: "user" }, undefined, hygiene)).toBe(true);
  // A confirmation of hygiene that was not asked for is no confirmation.
  expect(await agent.init({ envVars: {}, defaultUser: "user" })).toBe(false);
});

test("/init that the agent answers slowly (a loaded host) is waited for, not cut at 3 s and sent again", async () => {
  let requests = 0;
  const agent = await fakeAgent((s) => {
    requests++;
    setTimeout(() => s.end("HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"), 3500);
  });
  await agent.init({ envVars: {}, defaultUser: "user" }, undefined, undefined, 20_000);
  // A retry after a cut would be a second /init the guest has to answer, on a guest that is already too slow.
  expect(requests).toBe(1);
}, 30_000);
