// SHA-256 (FIPS 180-4), streaming, for the blk test's digest of what was read back.
#pragma once
#include <stddef.h>
#include <stdint.h>

struct sha256 {
  uint32_t h[8];
  uint64_t total;
  uint8_t buf[64];
  size_t used;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* sha256_hex writes 64 lowercase hex digits and a NUL into out. */
void sha256_hex(const uint8_t digest[32], char out[65]);
