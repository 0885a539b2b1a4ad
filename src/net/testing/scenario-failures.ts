// Scenario (run by src/net/pool.test.ts in its own namespaces): a start that fails part-way undoes what it did (no
// nft binary; port 53 taken on the gateway), and a burst of concurrent acquires gets distinct slots.
import { join } from "node:path";
import { Network } from "../network.ts";
import { leftovers, sh } from "./run-in-netns.ts";

const work = process.argv[2]!;
sh("ip link set lo up");
const opts = { sandboxCidr: "198.18.0.0/24", slotPoolSize: 2, bpffsRoot: join(work, "bpffs"), stateDir: join(work, "state"), dnsUpstreams: [{ host: "127.0.0.1", port: 9 }] };
const out: Record<string, unknown> = {};

async function failure(name: string, setup: () => Promise<() => void>) {
  const undo = await setup();
  try {
    const net = await Network.start(opts);
    out[name] = { error: null };
    await net.stop({ final: true });
  } catch (e) {
    out[name] = { error: (e as Error).message.slice(0, 200), left: leftovers(opts.bpffsRoot) };
  } finally {
    undo();
  }
}

await failure("noNft", async () => {
  const path = process.env.PATH;
  process.env.PATH = "/nonexistent";
  return () => (process.env.PATH = path);
});

await failure("port53Taken", async () => {
  // Something else already serves DNS on the gateway address (the local route has to exist for it to bind).
  sh("ip route add local 169.254.68.5/32 dev lo table local");
  const squatter = Bun.spawn(["python3", "-c", "import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('169.254.68.5',53)); print('ok',flush=True); time.sleep(20)"], { stdout: "pipe" });
  const reader = squatter.stdout.getReader();
  await reader.read();
  return () => {
    squatter.kill();
    sh("ip route del local 169.254.68.5/32 dev lo table local 2>/dev/null || true"); // start replaced and removed it
  };
});

// A burst of concurrent acquires (creates arriving together) with a small pool.
const net = await Network.start(opts);
const slots = await Promise.all(Array.from({ length: 16 }, () => net.pool.acquire()));
out.burst = { taps: new Set(slots.map((s) => s.tapName)).size, ips: new Set(slots.map((s) => s.slotIp)).size };
await Promise.all(slots.map((s) => net.pool.release(s)));
out.burstStopErrors = (await net.stop({ final: true })).map((e) => e.message);
out.after = leftovers(opts.bpffsRoot);
console.log(JSON.stringify(out));
