// Unit tests of onebox-init's pure parsers: cmdline, module params, forwarder line, JSON fields,
// base64, service files, passwd, SHA-256, the control message; plus a seeded fuzz pass.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "blk-pattern.h"
#include "cmdline.h"
#include "control.h"
#include "forwarder.h"
#include "json-field.h"
#include "service-conf.h"
#include "sha256.h"
#include "user-cgroup.h"
#include "user-db.h"
#include "test-check.h"

/* onebox.net=: the guest's address, prefix and gateway; anything malformed leaves the VM without a network. */
static void test_cmdline_net(void) {
  struct cmdline c;
  const char *s = "console=ttyS0 onebox.net=169.254.68.6/30,169.254.68.5 onebox.id=x";
  cmdline_parse(s, strlen(s), &c);
  CHECK(c.has_net && c.bad == 0 && c.net_ip == 0xa9fe4406u && c.net_prefix == 30 && c.net_gw == 0xa9fe4405u);
  cmdline_parse("quiet", 5, &c);
  CHECK(!c.has_net);
  static const char *bad[] = {
      "onebox.net=169.254.68.6/30",                 /* no gateway */
      "onebox.net=169.254.68.6,169.254.68.5",       /* no prefix */
      "onebox.net=169.254.68.6/31,169.254.68.7",    /* no room for a gateway */
      "onebox.net=169.254.68.6/30,169.254.68.9",    /* gateway off-link */
      "onebox.net=169.254.68.6/30,169.254.68.6",    /* gateway = self */
      "onebox.net=169.254.68.7/30,169.254.68.5",    /* broadcast address */
      "onebox.net=169.254.68.4/30,169.254.68.5",    /* network address */
      "onebox.net=169.254.068.6/30,169.254.68.5",   /* leading zero */
      "onebox.net=169.254.68.256/24,169.254.68.1",  /* octet > 255 */
      "onebox.net=169.254.68.6/30,169.254.68.5x",   /* trailing junk */
      "onebox.net=169.254.68.6/0,169.254.68.5",     /* prefix 0 */
      "onebox.net=1.2.3/24,1.2.3.1",                /* three parts */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cmdline_parse(bad[i], strlen(bad[i]), &c);
    CHECK(!c.has_net && c.bad == 1);
  }
}

static void test_cmdline(void) {
  struct cmdline c;
  const char *s = "console=ttyS0 reboot=k onebox.test=blk onebox.seed=0x10 onebox.id=abc-123 "
                  "onebox.hostname=my.box virtio_mmio.device=4K@0xd0000000:5 onebox.bogus=1 onebox.test2";
  cmdline_parse(s, strlen(s), &c);
  CHECK(!strcmp(c.test, "blk"));
  CHECK(c.has_seed && c.seed == 16);
  CHECK(!strcmp(c.id, "abc-123"));
  CHECK(!strcmp(c.hostname, "my.box"));
  CHECK(c.bad == 2);

  const char *bad = "onebox.test=BLK onebox.seed=18446744073709551616 onebox.id=a/b onebox.hostname=-x "
                    "onebox.test=waytoolongtestname";
  cmdline_parse(bad, strlen(bad), &c);
  CHECK(c.test[0] == 0 && !c.has_seed && c.id[0] == 0 && c.hostname[0] == 0 && c.bad == 5);

  uint64_t v;
  CHECK(cmdline_parse_u64("18446744073709551615", 20, &v) && v == UINT64_MAX);
  CHECK(!cmdline_parse_u64("0x", 2, &v));
  CHECK(!cmdline_parse_u64("", 0, &v));
  CHECK(!cmdline_parse_u64("12a", 3, &v));
  CHECK(cmdline_parse_u64("0xFFFFFFFFFFFFFFFF", 18, &v) && v == UINT64_MAX);
  CHECK(!cmdline_parse_u64("0x10000000000000000", 19, &v));

  /* not NUL-terminated: only len bytes may be read */
  char raw[16];
  memcpy(raw, "onebox.test=echoXXXX", 16);
  cmdline_parse(raw, 16, &c);
  CHECK(!strcmp(c.test, "echo"));
}

static void test_module_params(void) {
  char out[256];
  const char *s = "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 virtio-mmio.device=4K@0xd0001000:6 "
                  "virtio_blk.x=1 quiet";
  CHECK(cmdline_module_params(s, strlen(s), "virtio_mmio", out, sizeof out) == 2);
  CHECK(!strcmp(out, "device=4K@0xd0000000:5 device=4K@0xd0001000:6"));
  CHECK(cmdline_module_params(s, strlen(s), "virtio_blk", out, sizeof out) == 1 && !strcmp(out, "x=1"));
  CHECK(cmdline_module_params(s, strlen(s), "overlay", out, sizeof out) == 0 && out[0] == 0);
  CHECK(cmdline_module_params(s, strlen(s), "virtio_mmio", out, 20) == -1);
  const char *q = "virtio_mmio.device=\"4K@1:5\"";
  CHECK(cmdline_module_params(q, strlen(q), "virtio_mmio", out, sizeof out) == -1);
  const char *e = "virtio_mmio.=x";
  CHECK(cmdline_module_params(e, strlen(e), "virtio_mmio", out, sizeof out) == -1);
  const char *d = "a=virtio_mmio.device";
  CHECK(cmdline_module_params(d, strlen(d), "a", out, sizeof out) == 0);
}

static void test_fwd_line(void) {
  uint16_t p = 0;
  CHECK(fwd_line_parse("TCP 49983", 9, &p) == 0 && p == 49983);
  CHECK(fwd_line_parse("TCP 1", 5, &p) == 0 && p == 1);
  CHECK(fwd_line_parse("TCP 65535", 9, &p) == 0 && p == 65535);
  const char *bad[] = {"TCP 0", "TCP 65536", "TCP 01", "TCP ", "TCP", "tcp 80", "UDP 80", "TCP  80",
                       "TCP 80 ", "TCP 8a", "TCP -1", "TCP 999999", "TCP 80\r", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(fwd_line_parse(bad[i], strlen(bad[i]), &p) < 0);
}

static void test_json(void) {
  const char *j = " {\"op\":\"hygiene\",\"n\":-42,\"big\":9223372036854775807,\"nested\":{\"op\":\"x\",\"a\":[1,2,{}]},"
                  "\"esc\":\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\",\"f\":1.5,\"t\":true,\"z\":null} ";
  size_t L = strlen(j), n;
  char out[64];
  int64_t v;
  CHECK(json_validate(j, L) == JSON_OK);
  CHECK(json_get_string(j, L, "op", out, sizeof out, &n) == JSON_OK && !strcmp(out, "hygiene") && n == 7);
  CHECK(json_get_i64(j, L, "n", &v) == JSON_OK && v == -42);
  CHECK(json_get_i64(j, L, "big", &v) == JSON_OK && v == INT64_MAX);
  CHECK(json_get_string(j, L, "esc", out, sizeof out, &n) == JSON_OK && !strcmp(out, "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80"));
  CHECK(json_get_string(j, L, "missing", out, sizeof out, &n) == JSON_MISSING);
  CHECK(json_get_string(j, L, "n", out, sizeof out, &n) == JSON_WRONG_TYPE);
  CHECK(json_get_i64(j, L, "f", &v) == JSON_WRONG_TYPE);
  CHECK(json_get_i64(j, L, "op", &v) == JSON_WRONG_TYPE);
  CHECK(json_get_string(j, L, "op", out, 4, &n) == JSON_TOO_LONG);
  const char *big = "{\"x\":9223372036854775808}";
  CHECK(json_get_i64(big, strlen(big), "x", &v) == JSON_TOO_LONG);
  const char *mn = "{\"x\":-9223372036854775808}";
  CHECK(json_get_i64(mn, strlen(mn), "x", &v) == JSON_OK && v == INT64_MIN);
  const char *bad[] = {"", "{", "}", "[]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1.}",
                       "{\"a\":tru}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\u0000\"}",
                       "{\"a\":\"tab\there\"}", "{\"a\":1} x", "{\"a\":1}{}", "{a:1}", "{\"a\":[1,]}",
                       "{\"a\":\"unterminated}", "{\"a\":-}", "{\"a\":1e}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(json_validate(bad[i], strlen(bad[i])) != JSON_OK);
  /* depth limit */
  char deep[128];
  size_t k = 0;
  deep[k++] = '{';
  for (int i = 0; i < 20; i++) { memcpy(deep + k, "\"a\":{", 5); k += 5; }
  for (int i = 0; i < 21; i++) deep[k++] = '}';
  CHECK(json_validate(deep, k) == JSON_MALFORMED);
  /* duplicate keys: the last wins, like JSON.parse */
  const char *dup = "{\"op\":\"a\",\"op\":\"b\"}";
  CHECK(json_get_string(dup, strlen(dup), "op", out, sizeof out, &n) == JSON_OK && !strcmp(out, "b"));
}

static void test_base64(void) {
  uint8_t out[16];
  CHECK(base64_decode("aGVsbG8=", 8, out, sizeof out) == 5 && !memcmp(out, "hello", 5));
  CHECK(base64_decode("aGk=", 4, out, sizeof out) == 2 && !memcmp(out, "hi", 2));
  CHECK(base64_decode("YWJj", 4, out, sizeof out) == 3 && !memcmp(out, "abc", 3));
  CHECK(base64_decode("", 0, out, sizeof out) == 0);
  const char *bad[] = {"aGVsbG8", "a=Vs", "aGV=bG8=", "aG\nk", "aGk*", "a===", "===="};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(base64_decode(bad[i], strlen(bad[i]), out, sizeof out) < 0);
  CHECK(base64_decode("YWJjYWJj", 8, out, 5) < 0);
}

static void test_sha256(void) {
  uint8_t d[32];
  char hex[65];
  struct sha256 s;
  sha256_init(&s);
  sha256_update(&s, "abc", 3);
  sha256_final(&s, d);
  sha256_hex(d, hex);
  CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  sha256_init(&s);
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  for (size_t i = 0; i < strlen(m); i++) sha256_update(&s, m + i, 1);
  sha256_final(&s, d);
  sha256_hex(d, hex);
  CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
  sha256_init(&s);
  sha256_final(&s, d);
  sha256_hex(d, hex);
  CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

static void test_service_conf(void) {
  struct service_conf c;
  char err[128];
  const char *t = "# agent\nexec=/opt/onebox/bin/bun /opt/onebox/agent/agent.js --port 49983\n"
                  "env=HOME=/root\r\nenv=A=b=c\n\n  cwd=/home/user\nuser=user\nlog=null\n";
  CHECK(service_conf_parse(t, strlen(t), &c, err, sizeof err) == 0);
  CHECK(!strcmp(c.argv[0], "/opt/onebox/bin/bun") && !strcmp(c.argv[3], "49983") && c.argv[4] == NULL);
  CHECK(!strcmp(c.envp[0], "HOME=/root") && !strcmp(c.envp[1], "A=b=c") && c.envp[2] == NULL);
  CHECK(!strcmp(c.cwd, "/home/user") && !strcmp(c.user, "user") && !strcmp(c.log, "null"));
  const char *bad[] = {"", "env=A=1\n", "exec=bun x\n", "exec=/a\nexec=/b\n", "exec=/a\nfoo=1\n", "exec=/a\nenv==x\n",
                       "exec=/a\nlog=file\n", "exec=/a\ncwd=rel\n", "noequals\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(service_conf_parse(bad[i], strlen(bad[i]), &c, err, sizeof err) < 0);
  char many[1024] = "exec=/a";
  for (int i = 0; i < 40; i++) strcat(many, " x");
  CHECK(service_conf_parse(many, strlen(many), &c, err, sizeof err) < 0);
  static char big[SVC_TEXT_MAX]; /* a file that filled the read buffer may have been cut short */
  memset(big, '#', sizeof big);
  CHECK(service_conf_parse(big, sizeof big, &c, err, sizeof err) < 0 && strstr(err, "too large"));
}

static void test_user_db(void) {
  const char *p = "root:x:0:0:root:/root:/bin/bash\nuserx:x:5:5::/x:/bin/sh\nuser:x:1000:1000:,,,:/home/user:/bin/bash";
  struct user_entry u;
  CHECK(user_db_find(p, strlen(p), "user", &u) && u.uid == 1000 && u.gid == 1000 && !strcmp(u.home, "/home/user"));
  CHECK(user_db_find(p, strlen(p), "root", &u) && u.uid == 0 && !strcmp(u.shell, "/bin/bash"));
  CHECK(!user_db_find(p, strlen(p), "use", &u));
  const char *bad = "user:x:abc:1000::/home/user:/bin/sh\n";
  CHECK(!user_db_find(bad, strlen(bad), "user", &u));
  const char *shortl = "user:x:1000\n";
  CHECK(!user_db_find(shortl, strlen(shortl), "user", &u));
}

static void test_control_parse(void) {
  struct control_msg m;
  char err[128];
  const char *h = "{\"op\":\"hygiene\",\"time_ns\":1700000000123456789,"
                  "\"entropy\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==\","
                  "\"id\":\"sbx_1\",\"hostname\":\"sbx-1\"}";
  CHECK(control_parse(h, strlen(h), &m, err, sizeof err) == 0);
  CHECK(m.op == CONTROL_HYGIENE && m.has_time && m.time_ns == 1700000000123456789LL);
  CHECK(m.entropy_len == 64 && m.entropy[0] == 0 && m.entropy[63] == 63);
  CHECK(!strcmp(m.id, "sbx_1") && !strcmp(m.hostname, "sbx-1"));
  const char *p = "{\"op\":\"poweroff\"}";
  CHECK(control_parse(p, strlen(p), &m, err, sizeof err) == 0 && m.op == CONTROL_POWEROFF);
  const char *sy = "{\"op\":\"sync\"}";
  CHECK(control_parse(sy, strlen(sy), &m, err, sizeof err) == 0 && m.op == CONTROL_SYNC);
  const char *bad[] = {"{}", "{\"op\":\"reboot\"}", "{\"op\":\"hygiene\",\"time_ns\":-1}",
                       "{\"op\":\"hygiene\",\"time_ns\":\"1\"}", "{\"op\":\"hygiene\",\"entropy\":\"!!\"}",
                       "{\"op\":\"hygiene\",\"id\":\"../etc\"}", "{\"op\":\"hygiene\",\"hostname\":\"a b\"}",
                       "{\"op\":1}", "op=hygiene"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(control_parse(bad[i], strlen(bad[i]), &m, err, sizeof err) < 0);
}

/* Fuzz-ish: random mutations of valid inputs must never crash or read out of bounds (run under
 * -fsanitize=address by hand; here at least no crash and consistent results). */
static void test_fuzz(void) {
  const char *seeds[] = {"{\"op\":\"hygiene\",\"time_ns\":1,\"entropy\":\"aGk=\",\"id\":\"a\",\"hostname\":\"b\"}",
                         "TCP 49983", "onebox.test=echo virtio_mmio.device=4K@0x1:5 onebox.seed=7",
                         "exec=/a b\nenv=X=1\n"};
  uint64_t rng = 12345;
  for (int iter = 0; iter < 20000; iter++) {
    const char *s = seeds[iter % 4];
    size_t n = strlen(s);
    char *buf = malloc(n ? n : 1); /* exact size: ASan would flag any overread */
    memcpy(buf, s, n);
    for (int k = 0; k < 1 + iter % 4; k++) {
      rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
      buf[rng % n] = (char)(rng >> 24);
    }
    size_t len = (size_t)((rng >> 40) % (n + 1));
    struct control_msg m;
    struct cmdline c;
    struct service_conf sc;
    char err[128], out[64];
    uint16_t port;
    control_parse(buf, len, &m, err, sizeof err);
    json_validate(buf, len);
    json_get_string(buf, len, "op", out, sizeof out, NULL);
    fwd_line_parse(buf, len, &port);
    cmdline_parse(buf, len, &c);
    cmdline_module_params(buf, len, "virtio_mmio", out, sizeof out);
    service_conf_parse(buf, len, &sc, err, sizeof err);
    uint8_t b[64];
    base64_decode(buf, len, b, sizeof b);
    free(buf);
  }
}

static void test_user_cgroup_limits(void) {
  struct user_cgroup_limits l;
  const char *m512 = "MemTotal:         492000 kB\nMemFree:  1 kB\n";
  CHECK(user_cgroup_limits_for(m512, strlen(m512), &l) == 0);
  CHECK(l.memory_max == 492000ull * 1024 - 128ull * 1024 * 1024); /* 128 MiB kept for agent + kernel */
  CHECK(l.pids_max == 960);
  const char *m8g = "MemFree: 5 kB\nMemTotal: 8388608 kB\n";
  CHECK(user_cgroup_limits_for(m8g, strlen(m8g), &l) == 0);
  CHECK(l.memory_max == 7ull * 1024 * 1024 * 1024); /* 1/8 kept */
  CHECK(l.pids_max == 16384);
  const char *tiny = "MemTotal: 131072 kB";
  CHECK(user_cgroup_limits_for(tiny, strlen(tiny), &l) == 0);
  CHECK(l.memory_max == 64ull * 1024 * 1024 && l.pids_max == 256);
  const char *huge = "MemTotal: 1073741824 kB\n";
  CHECK(user_cgroup_limits_for(huge, strlen(huge), &l) == 0 && l.pids_max == 32768);
  const char *bad[] = {"", "MemFree: 1 kB\n", "MemTotal: kB\n", "MemTotal: 0 kB\n", "MemTotal:"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(user_cgroup_limits_for(bad[i], strlen(bad[i]), &l) < 0);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "pattern-sha256")) {
    /* Used by init.test.ts to check that guest/protocol.ts computes the same pattern. */
    uint64_t seed;
    if (!cmdline_parse_u64(argv[2], strlen(argv[2]), &seed)) return 2;
    uint64_t st = blk_pattern_init(seed);
    static uint8_t buf[1 << 16];
    struct sha256 s;
    sha256_init(&s);
    for (int i = 0; i < 16; i++) { blk_pattern_fill(&st, buf, sizeof buf); sha256_update(&s, buf, sizeof buf); }
    uint8_t d[32];
    char hex[65];
    sha256_final(&s, d);
    sha256_hex(d, hex);
    printf("%s\n", hex);
    return 0;
  }
  test_cmdline();
  test_cmdline_net();
  test_module_params();
  test_fwd_line();
  test_json();
  test_base64();
  test_sha256();
  test_service_conf();
  test_user_db();
  test_control_parse();
  test_user_cgroup_limits();
  test_fuzz();
  if (failures) {
    printf("parsers_test: %d failures\n", failures);
    return 1;
  }
  printf("parsers_test: ok\n");
  return 0;
}
