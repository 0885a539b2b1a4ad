// Test support: "the internet" of the packet-path scenario. Binds ADDR (once it is configured):
// UDP 7777 answers "from <peer address>", TCP 8080 accepts (the test reads the kernel's SYN-ACK). Prints "ready".
import { networkInterfaces } from "node:os";
const addr = process.argv[2] ?? "0.0.0.0";
// Wait for the address first: Bun binds a UDP socket to an address that is not configured yet (and its replies then
// leave from whatever address the route picks), so binding early is not a test of readiness.
const deadline = Date.now() + 5000;
const configured = () => Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === addr));
while (addr !== "0.0.0.0" && !configured()) {
  if (Date.now() > deadline) throw new Error(`${addr} was not configured within 5 s`);
  await Bun.sleep(20);
}
await Bun.udpSocket({
  hostname: addr,
  port: 7777,
  socket: {
    data(sock, _buf, port, peer) {
      sock.send(`from ${peer}`, port, peer);
    },
  },
});
Bun.listen({ hostname: addr, port: 8080, socket: { data() {}, open() {} } });
console.log("ready");
setTimeout(() => process.exit(0), 60_000); // bounded: never outlives its test
