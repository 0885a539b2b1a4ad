// A tiny bounded JSON reader: validates one object and extracts top-level fields (no allocation).
#include "json-field.h"

#include <stdbool.h>
#include <string.h>

struct scan {
  const char *p;
  size_t n, i;
};

static void skip_ws(struct scan *s) {
  while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\n' || s->p[s->i] == '\r'))
    s->i++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_u4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval(p[k]);
    if (h < 0) return false;
    v = v * 16 + (unsigned)h;
  }
  *out = v;
  return true;
}

/* decode_string decodes the string starting at s->i (on the opening quote) into out (may be NULL
 * to only validate). Returns JSON_OK, JSON_MALFORMED or JSON_TOO_LONG (still consumes it). */
static int decode_string(struct scan *s, char *out, size_t cap, size_t *outlen) {
  if (s->i >= s->n || s->p[s->i] != '"') return JSON_MALFORMED;
  s->i++;
  size_t o = 0;
  bool too_long = false;
  for (;;) {
    if (s->i >= s->n) return JSON_MALFORMED;
    unsigned char c = (unsigned char)s->p[s->i++];
    if (c == '"') break;
    if (c < 0x20) return JSON_MALFORMED;
    char tmp[4];
    size_t tn = 1;
    tmp[0] = (char)c;
    if (c == '\\') {
      if (s->i >= s->n) return JSON_MALFORMED;
      char e = s->p[s->i++];
      switch (e) {
        case '"': case '\\': case '/': tmp[0] = e; break;
        case 'b': tmp[0] = '\b'; break;
        case 'f': tmp[0] = '\f'; break;
        case 'n': tmp[0] = '\n'; break;
        case 'r': tmp[0] = '\r'; break;
        case 't': tmp[0] = '\t'; break;
        case 'u': {
          unsigned cp;
          if (s->n - s->i < 4 || !read_u4(s->p + s->i, &cp)) return JSON_MALFORMED;
          s->i += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (s->n - s->i < 6 || s->p[s->i] != '\\' || s->p[s->i + 1] != 'u' || !read_u4(s->p + s->i + 2, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
              return JSON_MALFORMED;
            s->i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return JSON_MALFORMED;
          }
          if (cp == 0) return JSON_MALFORMED;
          if (cp < 0x80) { tmp[0] = (char)cp; tn = 1; }
          else if (cp < 0x800) { tmp[0] = (char)(0xC0 | (cp >> 6)); tmp[1] = (char)(0x80 | (cp & 0x3F)); tn = 2; }
          else if (cp < 0x10000) {
            tmp[0] = (char)(0xE0 | (cp >> 12)); tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            tmp[2] = (char)(0x80 | (cp & 0x3F)); tn = 3;
          } else {
            tmp[0] = (char)(0xF0 | (cp >> 18)); tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); tmp[3] = (char)(0x80 | (cp & 0x3F)); tn = 4;
          }
          break;
        }
        default: return JSON_MALFORMED;
      }
    }
    if (out) {
      if (o + tn >= cap) too_long = true;
      else { memcpy(out + o, tmp, tn); o += tn; }
    }
  }
  if (out) { out[o] = '\0'; if (outlen) *outlen = o; }
  return too_long ? JSON_TOO_LONG : JSON_OK;
}

static int scan_number(struct scan *s) {
  size_t start = s->i;
  if (s->i < s->n && s->p[s->i] == '-') s->i++;
  if (s->i >= s->n) return JSON_MALFORMED;
  if (s->p[s->i] == '0') s->i++;
  else if (s->p[s->i] >= '1' && s->p[s->i] <= '9') while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9') s->i++;
  else return JSON_MALFORMED;
  if (s->i < s->n && s->p[s->i] == '.') {
    s->i++;
    size_t d = s->i;
    while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9') s->i++;
    if (s->i == d) return JSON_MALFORMED;
  }
  if (s->i < s->n && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
    s->i++;
    if (s->i < s->n && (s->p[s->i] == '+' || s->p[s->i] == '-')) s->i++;
    size_t d = s->i;
    while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9') s->i++;
    if (s->i == d) return JSON_MALFORMED;
  }
  return s->i > start ? JSON_OK : JSON_MALFORMED;
}

static bool scan_literal(struct scan *s, const char *lit) {
  size_t l = strlen(lit);
  if (s->n - s->i < l || memcmp(s->p + s->i, lit, l) != 0) return false;
  s->i += l;
  return true;
}

static int scan_value(struct scan *s, int depth);

static int scan_container(struct scan *s, int depth, char close, bool object) {
  if (depth >= JSON_MAX_DEPTH) return JSON_MALFORMED;
  s->i++;
  skip_ws(s);
  if (s->i < s->n && s->p[s->i] == close) { s->i++; return JSON_OK; }
  for (;;) {
    skip_ws(s);
    if (object) {
      if (decode_string(s, NULL, 0, NULL) != JSON_OK) return JSON_MALFORMED;
      skip_ws(s);
      if (s->i >= s->n || s->p[s->i] != ':') return JSON_MALFORMED;
      s->i++;
      skip_ws(s);
    }
    if (scan_value(s, depth + 1) != JSON_OK) return JSON_MALFORMED;
    skip_ws(s);
    if (s->i >= s->n) return JSON_MALFORMED;
    if (s->p[s->i] == ',') { s->i++; continue; }
    if (s->p[s->i] == close) { s->i++; return JSON_OK; }
    return JSON_MALFORMED;
  }
}

static int scan_value(struct scan *s, int depth) {
  if (s->i >= s->n) return JSON_MALFORMED;
  switch (s->p[s->i]) {
    case '"': return decode_string(s, NULL, 0, NULL);
    case '{': return scan_container(s, depth, '}', true);
    case '[': return scan_container(s, depth, ']', false);
    case 't': return scan_literal(s, "true") ? JSON_OK : JSON_MALFORMED;
    case 'f': return scan_literal(s, "false") ? JSON_OK : JSON_MALFORMED;
    case 'n': return scan_literal(s, "null") ? JSON_OK : JSON_MALFORMED;
    default: return scan_number(s);
  }
}

int json_validate(const char *js, size_t len) {
  struct scan s = {js, len, 0};
  skip_ws(&s);
  if (s.i >= s.n || s.p[s.i] != '{') return JSON_MALFORMED;
  if (scan_value(&s, 0) != JSON_OK) return JSON_MALFORMED;
  skip_ws(&s);
  return s.i == s.n ? JSON_OK : JSON_MALFORMED;
}

/* find_key positions s on the value of the last occurrence of top-level key. */
static int find_key(const char *js, size_t len, const char *key, struct scan *at) {
  if (json_validate(js, len) != JSON_OK) return JSON_MALFORMED;
  struct scan s = {js, len, 0};
  skip_ws(&s);
  s.i++; /* '{' */
  int found = JSON_MISSING;
  for (;;) {
    skip_ws(&s);
    if (s.p[s.i] == '}') break;
    char name[64];
    size_t nlen = 0;
    int r = decode_string(&s, name, sizeof name, &nlen);
    skip_ws(&s);
    s.i++; /* ':' */
    skip_ws(&s);
    if (r == JSON_OK && strlen(key) == nlen && memcmp(name, key, nlen) == 0) {
      *at = s;
      found = JSON_OK;
    }
    scan_value(&s, 1);
    skip_ws(&s);
    if (s.p[s.i] == ',') s.i++;
  }
  return found;
}

int json_get_string(const char *js, size_t len, const char *key, char *out, size_t cap, size_t *outlen) {
  struct scan s;
  int r = find_key(js, len, key, &s);
  if (r != JSON_OK) return r;
  if (s.p[s.i] != '"') return JSON_WRONG_TYPE;
  if (cap == 0) return JSON_TOO_LONG;
  size_t ol = 0;
  r = decode_string(&s, out, cap, &ol);
  if (outlen) *outlen = ol;
  return r;
}

int json_get_i64(const char *js, size_t len, const char *key, int64_t *out) {
  struct scan s;
  int r = find_key(js, len, key, &s);
  if (r != JSON_OK) return r;
  size_t i = s.i;
  bool neg = false;
  if (js[i] == '-') { neg = true; i++; }
  if (i >= len || js[i] < '0' || js[i] > '9') return JSON_WRONG_TYPE;
  uint64_t v = 0;
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < len && js[i] >= '0' && js[i] <= '9'; i++) {
    unsigned d = (unsigned)(js[i] - '0');
    if (v > (limit - d) / 10) return JSON_TOO_LONG;
    v = v * 10 + d;
  }
  if (i < len && (js[i] == '.' || js[i] == 'e' || js[i] == 'E')) return JSON_WRONG_TYPE;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return JSON_OK;
}
