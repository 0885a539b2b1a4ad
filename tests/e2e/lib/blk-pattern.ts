// The blk test's data pattern, as guest/init/blk-pattern.c writes it: Marsaglia's xorshift64
// (13, 7, 17), each new state one little-endian 64-bit word; seed 0 maps to 0x9E3779B97F4A7C15.
// Computed on 32-bit halves because BigInt arithmetic is ~50x slower (this runs under TCG).

/** Mirrors ONEBOX_BLK_TEST_BYTES and ONEBOX_BLK_TEST_SEED_ZERO in guest/init/protocol.h. */
export const BLK_TEST_BYTES = 64 * 1024 * 1024;
const SEED_ZERO = 0x9e3779b97f4a7c15n;

/** Fills `bytes` (a multiple of 8) of the pattern for `seed` into a new buffer. */
export function blkPattern(seed: bigint, bytes: number): Uint8Array {
  const s = seed === 0n ? SEED_ZERO : BigInt.asUintN(64, seed);
  let hi = Number(s >> 32n) >>> 0;
  let lo = Number(s & 0xffffffffn) >>> 0;
  const words = new Uint32Array(bytes / 4);
  for (let i = 0; i < words.length; i += 2) {
    // x ^= x << 13
    hi = (hi ^ ((hi << 13) | (lo >>> 19))) >>> 0;
    lo = (lo ^ (lo << 13)) >>> 0;
    // x ^= x >> 7
    lo = (lo ^ ((lo >>> 7) | (hi << 25))) >>> 0;
    hi = (hi ^ (hi >>> 7)) >>> 0;
    // x ^= x << 17
    hi = (hi ^ ((hi << 17) | (lo >>> 15))) >>> 0;
    lo = (lo ^ (lo << 17)) >>> 0;
    words[i] = lo; // little-endian word: low half first (x86 hosts are little-endian)
    words[i + 1] = hi;
  }
  return new Uint8Array(words.buffer);
}

export function sha256Hex(data: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}
