// The blk test's data pattern (documented in guest/protocol.ts): xorshift64 words, little-endian.
#include "blk-pattern.h"

#include "protocol.h"

uint64_t blk_pattern_init(uint64_t seed) { return seed ? seed : ONEBOX_BLK_TEST_SEED_ZERO; }

void blk_pattern_fill(uint64_t *state, uint8_t *buf, size_t n) {
  uint64_t x = *state;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    /* Marsaglia's xorshift64 (13, 7, 17); each output word is the new state. */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (int b = 0; b < 8; b++) buf[i + (size_t)b] = (uint8_t)(x >> (8 * b));
  }
  *state = x;
}
