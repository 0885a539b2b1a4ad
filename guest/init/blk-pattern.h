// The blk test's data pattern (documented in guest/protocol.ts): xorshift64 words, little-endian.
#pragma once
#include <stddef.h>
#include <stdint.h>

/* blk_pattern_init returns the generator state for a seed (seed 0 maps to a fixed non-zero
 * constant, since xorshift64 is stuck at 0). */
uint64_t blk_pattern_init(uint64_t seed);
/* blk_pattern_fill writes n bytes (a multiple of 8) of the pattern, advancing *state. */
void blk_pattern_fill(uint64_t *state, uint8_t *buf, size_t n);
