// Standard base64 (RFC 4648 §4) decoding, strict: padding required, no whitespace.
#include "base64.h"

static int b64_val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

long base64_decode(const char *in, size_t n, uint8_t *out, size_t cap) {
  if (n % 4 != 0) return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      char c = in[i + k];
      if (c == '=') {
        /* '=' only in the last quantum, only in its last two places, and only trailing. */
        if (i + 4 != n || k < 2) return -1;
        pad++;
        v[k] = 0;
      } else {
        if (pad) return -1;
        v[k] = b64_val(c);
        if (v[k] < 0) return -1;
      }
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    size_t take = (size_t)(3 - pad);
    if (o + take > cap) return -1;
    out[o++] = (uint8_t)(w >> 16);
    if (take > 1) out[o++] = (uint8_t)(w >> 8);
    if (take > 2) out[o++] = (uint8_t)w;
  }
  return (long)o;
}
