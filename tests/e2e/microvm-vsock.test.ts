// e2e: 100 concurrent host->guest vsock streams (hybrid vsock, CONNECT 5000) each echo 1 MiB intact.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { ONEBOX_TEST_ECHO_PORT } from "../../guest/protocol.ts";
import { dialVsock } from "../../src/vmm/index.ts";
import { BOOT_TIMEOUT_MS, IN_TESTHOST, bootToMarker, dialWhenListening, echoOver, sha256Hex, type TestVm } from "./lib/harness.ts";

const STREAMS = 100;
const BYTES = 1 << 20;

let t: TestVm | undefined;
afterAll(async () => t?.dispose());

describe.skipIf(!IN_TESTHOST)("vsock", () => {
  test(`${STREAMS} concurrent streams each echo 1 MiB`, async () => {
    t = await bootToMarker({ test: "echo", vcpus: 2, memMib: 512 });
    const vm = t;
    // Wait for the echo server's listener: a CONNECT before it exists is refused.
    (await dialWhenListening(vm.vsockPath, ONEBOX_TEST_ECHO_PORT)).destroy();
    const results = await Promise.all(
      Array.from({ length: STREAMS }, async (_, i) => {
        const data = randomBytes(BYTES);
        // Generous handshake timeout: 100 CONNECTs queue behind 100 MiB of traffic in nested TCG.
        const sock = await dialVsock(vm.vsockPath, ONEBOX_TEST_ECHO_PORT, 60_000);
        const back = await echoOver(sock, data, `stream ${i}`);
        return { i, want: sha256Hex(data), got: sha256Hex(back.subarray(0, BYTES)), extra: back.length - BYTES };
      }),
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nguest console tail:\n${vm.console().slice(-1500)}`);
    });
    for (const r of results) {
      expect({ stream: r.i, sha256: r.got, extra: r.extra }).toEqual({ stream: r.i, sha256: r.want, extra: 0 });
    }
  }, BOOT_TIMEOUT_MS * 5);
});
