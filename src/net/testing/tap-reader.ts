// Test support: plays the VMM of a slot. Holds the TAP as fd 3 and appends every frame it reads (hex, one per line,
// after the virtio-net header) to the file named by argv[2], for up to 30 s.
import { appendFileSync } from "node:fs";
import { readFrame, VNET_HDR_SIZE } from "../../sys/tap.ts";

const out = process.argv[2]!;
const end = Date.now() + 30_000;
while (Date.now() < end) {
  const f = await readFrame(3, 200);
  if (f) appendFileSync(out, Buffer.from(f.subarray(VNET_HDR_SIZE)).toString("hex") + "\n");
}
