// Asks a stalled test host's QEMU monitor where its vCPUs are (scripts/testhost, at a stall, before the
// kill): `info registers` for every vCPU, each RIP named from the test host kernel's symbols if a copy
// of its /proc/kallsyms is at hand (Debian's System.map is a stub). The test host boots with nokaslr,
// so one copy serves every run of that kernel; make it once with
//   scripts/testhost run 'grep -i " t " /proc/kallsyms' > /var/cache/onebox/testhost/kallsyms-<version>
//
// usage: bun scripts/testhost-monitor.ts MONITOR_SOCKET [KALLSYMS]
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";

const [sock, map] = process.argv.slice(2);
if (!sock) throw new Error("usage: testhost-monitor.ts MONITOR_SOCKET [KALLSYMS]");

const out = await new Promise<string>((resolve) => {
  let text = "";
  const c = connect(sock);
  const done = (): void => {
    c.destroy();
    resolve(text);
  };
  c.on("data", (d) => {
    if (text.length < 256 * 1024) text += d.toString("latin1");
  });
  c.on("error", (e) => {
    text += `monitor: ${e.message}\n`;
    done();
  });
  c.on("connect", () => c.write("info registers -a\n"));
  setTimeout(done, 3000);
});

// kallsyms (System.map's format): "ffffffff81000000 T _stext" lines; the symbol of an address is the last one at
// or below it.
const symbols: [bigint, string][] = [];
if (map && existsSync(map)) {
  for (const line of readFileSync(map, "utf8").split("\n")) {
    const [addr, kind, name] = line.split(" ");
    if (addr && name && /^[tTwW]$/.test(kind ?? "")) symbols.push([BigInt(`0x${addr}`), name]);
  }
  symbols.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
function symbolOf(rip: bigint): string {
  let lo = 0, hi = symbols.length - 1, best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (symbols[mid]![0] <= rip) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best < 0 ? "?" : `${symbols[best]![1]}+0x${(rip - symbols[best]![0]).toString(16)}`;
}

// Per vCPU: its registers; EFER.SVME (bit 12) tells the test host's own context (its KVM set it) from a nested
// guest's (whose RIP means nothing in this map).
const blocks: string[][] = [];
for (const line of out.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").split(/\r?\n/)) {
  if (/^CPU#/.test(line) || (blocks.length === 0 && /^RAX=/.test(line))) blocks.push([]);
  if (/^(CPU#|RAX=|RSI=|R8 =|R12=|RIP=|CS =|CR0=|EFER=)/.test(line)) blocks.at(-1)?.push(line);
}
for (const b of blocks) {
  const efer = /^EFER=([0-9a-f]+)/.exec(b.find((l) => l.startsWith("EFER=")) ?? "");
  const inGuest = efer ? (BigInt(`0x${efer[1]}`) & 0x1000n) === 0n : false;
  for (const line of b) {
    const rip = /^RIP=([0-9a-f]{16})/.exec(line);
    const addr = rip ? BigInt(`0x${rip[1]}`) : 0n;
    const where = !rip ? "" : inGuest ? "  <- in a nested guest (EFER.SVME clear)" : addr < 0xffff800000000000n ? "  <- test host user space" : symbols.length ? `  <- ${symbolOf(addr)}` : "";
    console.log(line + where);
  }
}
if (!blocks.length) console.log(out.slice(0, 2000));
