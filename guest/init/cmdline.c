// Parser for the kernel command line: onebox.* settings and per-module parameters.
#include "cmdline.h"

#include <string.h>

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool cmdline_valid_hostname(const char *s, size_t n) {
  /* RFC 1123 label characters plus dots; sethostname takes at most 64 bytes. */
  if (n == 0 || n > 63 || s[0] == '-' || s[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
      return false;
  }
  return true;
}

bool cmdline_valid_id(const char *s, size_t n) {
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  }
  return true;
}

bool cmdline_parse_u64(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  unsigned base = 10;
  size_t i = 0;
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { base = 16; i = 2; }
  if (i == n) return false;
  for (; i < n; i++) {
    char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
    else return false;
    if (v > (UINT64_MAX - d) / base) return false;
    v = v * base + d;
  }
  *out = v;
  return true;
}

/* Dotted quad of exactly n chars, each part 0..255 without leading zeros. */
static bool parse_ipv4(const char *s, size_t n, uint32_t *out) {
  uint32_t v = 0;
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part) {
      if (i >= n || s[i] != '.') return false;
      i++;
    }
    size_t start = i;
    uint32_t x = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3) x = x * 10 + (uint32_t)(s[i++] - '0');
    if (i == start || x > 255 || (i - start > 1 && s[start] == '0')) return false;
    v = v << 8 | x;
  }
  if (i != n) return false;
  *out = v;
  return true;
}

bool cmdline_parse_net(const char *s, size_t n, uint32_t *ip, uint8_t *prefix, uint32_t *gw) {
  const char *slash = memchr(s, '/', n), *comma = memchr(s, ',', n);
  if (!slash || !comma || comma < slash) return false;
  uint64_t p;
  uint32_t a, g;
  if (!parse_ipv4(s, (size_t)(slash - s), &a) || !cmdline_parse_u64(slash + 1, (size_t)(comma - slash - 1), &p) ||
      p < 1 || p > 30 || !parse_ipv4(comma + 1, n - (size_t)(comma + 1 - s), &g))
    return false;
  uint32_t mask = ~0u << (32 - p);
  bool host = (a & ~mask) != 0 && (a & ~mask) != ~mask, gw_host = (g & ~mask) != 0 && (g & ~mask) != ~mask;
  if (!host || !gw_host || (a & mask) != (g & mask) || a == g) return false;
  *ip = a;
  *prefix = (uint8_t)p;
  *gw = g;
  return true;
}

/* next_token returns the next whitespace-separated token of buf[*pos..len). */
static bool next_token(const char *buf, size_t len, size_t *pos, const char **tok, size_t *tlen) {
  size_t i = *pos;
  while (i < len && is_space(buf[i])) i++;
  if (i >= len || buf[i] == '\0') return false;
  size_t start = i;
  while (i < len && !is_space(buf[i]) && buf[i] != '\0') i++;
  *tok = buf + start;
  *tlen = i - start;
  *pos = i;
  return true;
}

static bool copy_value(char *dst, size_t cap, const char *v, size_t n) {
  if (n >= cap) return false;
  memcpy(dst, v, n);
  dst[n] = '\0';
  return true;
}

static bool key_is(const char *tok, size_t klen, const char *key) {
  return strlen(key) == klen && memcmp(tok, key, klen) == 0;
}

int cmdline_parse(const char *buf, size_t len, struct cmdline *out) {
  memset(out, 0, sizeof *out);
  if (len > CMDLINE_MAX) len = CMDLINE_MAX;
  size_t pos = 0;
  const char *tok;
  size_t tlen;
  while (next_token(buf, len, &pos, &tok, &tlen)) {
    if (tlen < 7 || memcmp(tok, "onebox.", 7) != 0) continue;
    const char *eq = memchr(tok, '=', tlen);
    if (!eq) { out->bad++; continue; }
    size_t klen = (size_t)(eq - tok);
    const char *v = eq + 1;
    size_t vlen = tlen - klen - 1;
    bool ok;
    if (key_is(tok, klen, "onebox.test")) {
      ok = vlen > 0 && copy_value(out->test, sizeof out->test, v, vlen);
      for (size_t i = 0; ok && i < vlen; i++) ok = v[i] >= 'a' && v[i] <= 'z';
      if (!ok) out->test[0] = '\0';
    } else if (key_is(tok, klen, "onebox.seed")) {
      ok = cmdline_parse_u64(v, vlen, &out->seed);
      out->has_seed = ok;
    } else if (key_is(tok, klen, "onebox.hostname")) {
      ok = cmdline_valid_hostname(v, vlen) && copy_value(out->hostname, sizeof out->hostname, v, vlen);
    } else if (key_is(tok, klen, "onebox.net")) {
      ok = cmdline_parse_net(v, vlen, &out->net_ip, &out->net_prefix, &out->net_gw);
      out->has_net = ok;
    } else if (key_is(tok, klen, "onebox.id")) {
      ok = cmdline_valid_id(v, vlen) && copy_value(out->id, sizeof out->id, v, vlen);
    } else {
      ok = false;
    }
    if (!ok) out->bad++;
  }
  return 0;
}

/* Module parameter values may contain only these: no quotes or spaces, which finit_module's
 * parameter parser would interpret. */
static bool valid_param_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-' || c == '@' || c == ':' || c == '.' || c == ',' || c == '=' || c == '/';
}

static bool module_name_eq(const char *a, size_t n, const char *b) {
  if (strlen(b) != n) return false;
  for (size_t i = 0; i < n; i++) {
    char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
    if (x != y) return false;
  }
  return true;
}

int cmdline_module_params(const char *buf, size_t len, const char *module, char *out, size_t cap) {
  if (cap == 0) return -1;
  out[0] = '\0';
  if (len > CMDLINE_MAX) len = CMDLINE_MAX;
  size_t used = 0, pos = 0;
  int count = 0;
  const char *tok;
  size_t tlen;
  while (next_token(buf, len, &pos, &tok, &tlen)) {
    const char *dot = memchr(tok, '.', tlen);
    const char *eq = memchr(tok, '=', tlen);
    if (!dot || (eq && eq < dot)) continue;
    if (!module_name_eq(tok, (size_t)(dot - tok), module)) continue;
    const char *p = dot + 1;
    size_t plen = tlen - (size_t)(p - tok);
    if (plen == 0 || p[0] == '=') return -1;
    for (size_t i = 0; i < plen; i++)
      if (!valid_param_char(p[i])) return -1;
    size_t need = plen + (used ? 1 : 0);
    if (used + need + 1 > cap) return -1;
    if (used) out[used++] = ' ';
    memcpy(out + used, p, plen);
    used += plen;
    out[used] = '\0';
    count++;
  }
  return count;
}
