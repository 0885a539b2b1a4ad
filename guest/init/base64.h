// Standard base64 (RFC 4648 §4) decoding, strict: padding required, no whitespace.
#pragma once
#include <stddef.h>
#include <stdint.h>

/* base64_decode decodes in[0..n) into out (cap bytes); returns the decoded length or -1. */
long base64_decode(const char *in, size_t n, uint8_t *out, size_t cap);
