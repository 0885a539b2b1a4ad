// Runs the virtio ring fuzzer (built with ASan/UBSan by `make -C ffi fuzz`) for a short fixed-seed run in CI.
import { expect, test } from "bun:test";
import { join } from "node:path";

const ffiDir = join(import.meta.dir, "../../..");
/* CI: fixed seed, bounded iterations (a few seconds). By hand: ffi/build/fuzz/virtio_fuzz --seconds 600 --seed N. */
const SEED = process.env.VIRTIO_FUZZ_SEED ?? "1";
const ITERATIONS = process.env.VIRTIO_FUZZ_ITERATIONS ?? "1500";

test("virtio ring fuzzer: blk, rng, vsock, net under ASan/UBSan (fixed seed)", () => {
  const build = Bun.spawnSync(["make", "-C", ffiDir, "-j2", "fuzz"], { stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) console.error(build.stdout.toString(), build.stderr.toString());
  expect(build.exitCode).toBe(0);
  const r = Bun.spawnSync([join(ffiDir, "build/fuzz/virtio_fuzz"), "--seed", SEED, "--iterations", ITERATIONS], {
    stdout: "pipe",
    stderr: "pipe",
    timeout: 150_000,
  });
  const out = r.stdout.toString();
  console.log(out.trimEnd()); // the coverage lines, for the CI log
  if (r.exitCode !== 0) console.error(r.stderr.toString());
  expect(r.exitCode).toBe(0);
  for (const dev of ["blk", "rng", "vsock", "net"]) expect(out).toMatch(new RegExp(`virtio_fuzz: ${dev} +iterations ${ITERATIONS} `));
  expect(out).toContain("virtio_fuzz: ok,");
}, 240_000);
