// Runs INSIDE a guest with the guest's own bun (scripts/bench-exec.ts copies it there): times the agent's handling
// of `commands.run('echo hi')` (process.Process/Start, bash -l -c, to its end event) and of a 4 KiB
// GET /files over loopback, without the host, the proxy or vsock. env: RUNS, FILE, PORT, TOKEN.
const port = process.env.PORT ?? "49983";
const runs = Number(process.env.RUNS ?? "30");
const base = `http://127.0.0.1:${port}`;
const auth = { authorization: `Basic ${btoa("user:")}`, ...(process.env.TOKEN ? { "x-access-token": process.env.TOKEN } : {}) };

/** One Connect JSON envelope (flags 0, big-endian length), as the SDK sends a server-stream request. */
function envelope(msg) {
  const json = new TextEncoder().encode(JSON.stringify(msg));
  const out = new Uint8Array(5 + json.length);
  new DataView(out.buffer).setUint32(1, json.length);
  out.set(json, 5);
  return out;
}

async function start() {
  const res = await fetch(`${base}/process.Process/Start`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/connect+json", "connect-protocol-version": "1" },
    body: envelope({ process: { cmd: "/bin/bash", args: ["-l", "-c", "echo hi"] } }),
  });
  const text = new TextDecoder().decode(await res.arrayBuffer());
  if (!text.includes('"end"') || !text.includes(btoa("hi\n"))) throw new Error(`unexpected Start stream: ${text.slice(0, 300)}`);
}

async function read() {
  const res = await fetch(`${base}/files?path=${encodeURIComponent(process.env.FILE)}`, { headers: auth });
  if (res.status !== 200 || (await res.arrayBuffer()).byteLength !== 4096) throw new Error(`GET /files gave ${res.status}`);
}

async function timed(fn) {
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms;
}

await start(); // warm-up
console.log(JSON.stringify({ start: await timed(start), read: await timed(read) }));
