// A tiny bounded JSON reader: validates one object and extracts top-level fields (no allocation).
#pragma once
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 16

enum { JSON_OK = 0, JSON_MISSING = 1, JSON_MALFORMED = -1, JSON_WRONG_TYPE = -2, JSON_TOO_LONG = -3 };

/* json_validate checks that js[0..len) is exactly one JSON object (surrounding whitespace
 * allowed), nesting at most JSON_MAX_DEPTH. */
int json_validate(const char *js, size_t len);
/* json_get_string decodes the string value of top-level key into out (NUL-terminated, at most
 * cap-1 bytes); *outlen gets its length. Strings with NUL (\u0000) are refused as malformed. */
int json_get_string(const char *js, size_t len, const char *key, char *out, size_t cap, size_t *outlen);
/* json_get_i64 reads an integer value (no fraction or exponent) of top-level key. */
int json_get_i64(const char *js, size_t len, const char *key, int64_t *out);
