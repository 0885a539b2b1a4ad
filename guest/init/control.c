// The clone-hygiene control channel (vsock 1025): JSON lines from the host, one reply each.
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "cmdline.h"
#include "file-io.h"
#include "json-field.h"
#include "log.h"
#include "sockets.h"

#define SANDBOX_ID_DIR "/run/onebox"
#define SANDBOX_ID_FILE "/run/onebox/sandbox-id"

int control_parse(const char *line, size_t len, struct control_msg *out, char *err, size_t errcap) {
  memset(out, 0, sizeof *out);
  char op[16];
  if (len > CONTROL_LINE_MAX) { snprintf(err, errcap, "line too long"); return -1; }
  if (json_validate(line, len) != JSON_OK) { snprintf(err, errcap, "not a JSON object"); return -1; }
  if (json_get_string(line, len, "op", op, sizeof op, NULL) != JSON_OK) {
    snprintf(err, errcap, "missing or bad \"op\"");
    return -1;
  }
  if (!strcmp(op, "ping")) { out->op = CONTROL_PING; return 0; }
  if (!strcmp(op, "poweroff")) { out->op = CONTROL_POWEROFF; return 0; }
  if (!strcmp(op, "status")) { out->op = CONTROL_STATUS; return 0; }
  if (!strcmp(op, "sync")) { out->op = CONTROL_SYNC; return 0; }
  if (strcmp(op, "hygiene") != 0) { snprintf(err, errcap, "unknown op"); return -1; }
  out->op = CONTROL_HYGIENE;

  int r = json_get_i64(line, len, "time_ns", &out->time_ns);
  if (r == JSON_OK) {
    if (out->time_ns < 0) { snprintf(err, errcap, "negative time_ns"); return -1; }
    out->has_time = true;
  } else if (r != JSON_MISSING) { snprintf(err, errcap, "bad \"time_ns\""); return -1; }

  char b64[((CONTROL_ENTROPY_MAX + 2) / 3) * 4 + 1];
  size_t blen = 0;
  r = json_get_string(line, len, "entropy", b64, sizeof b64, &blen);
  if (r == JSON_OK) {
    long n = base64_decode(b64, blen, out->entropy, sizeof out->entropy);
    if (n <= 0) { snprintf(err, errcap, "bad base64 in \"entropy\""); return -1; }
    out->entropy_len = (size_t)n;
  } else if (r != JSON_MISSING) { snprintf(err, errcap, "bad \"entropy\""); return -1; }

  size_t n = 0;
  r = json_get_string(line, len, "id", out->id, sizeof out->id, &n);
  if (r == JSON_OK) {
    if (!cmdline_valid_id(out->id, n)) { snprintf(err, errcap, "bad \"id\""); return -1; }
  } else if (r != JSON_MISSING) { snprintf(err, errcap, "bad \"id\""); return -1; } else out->id[0] = '\0';

  r = json_get_string(line, len, "hostname", out->hostname, sizeof out->hostname, &n);
  if (r == JSON_OK) {
    if (!cmdline_valid_hostname(out->hostname, n)) { snprintf(err, errcap, "bad \"hostname\""); return -1; }
  } else if (r != JSON_MISSING) { snprintf(err, errcap, "bad \"hostname\""); return -1; } else out->hostname[0] = '\0';
  return 0;
}

static int add_entropy(const uint8_t *buf, size_t n, char *err, size_t errcap) {
  int fd = open("/dev/random", O_WRONLY | O_CLOEXEC);
  if (fd < 0) { snprintf(err, errcap, "open /dev/random: %s", strerror(errno)); return -1; }
  struct {
    struct rand_pool_info info;
    uint8_t data[CONTROL_ENTROPY_MAX];
  } req;
  req.info.entropy_count = (int)(n * 8); /* the host's bytes come from its CSPRNG: full credit */
  req.info.buf_size = (int)n;
  memcpy(req.data, buf, n);
  int rc = 0;
  if (ioctl(fd, RNDADDENTROPY, &req) < 0) {
    snprintf(err, errcap, "RNDADDENTROPY: %s", strerror(errno));
    rc = -1;
  } else if (ioctl(fd, RNDRESEEDCRNG) < 0) {
    /* RNDRESEEDCRNG exists since 4.17; the guest kernel is 6.1. */
    snprintf(err, errcap, "RNDRESEEDCRNG: %s", strerror(errno));
    rc = -1;
  }
  close(fd);
  return rc;
}

static int write_id(const char *id, char *err, size_t errcap) {
  mkdir(SANDBOX_ID_DIR, 0755);
  const char *tmp = SANDBOX_ID_FILE ".tmp";
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  size_t n = strlen(id);
  if (fd < 0 || write(fd, id, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || close(fd) < 0 ||
      rename(tmp, SANDBOX_ID_FILE) < 0) {
    snprintf(err, errcap, "write %s: %s", SANDBOX_ID_FILE, strerror(errno));
    return -1;
  }
  return 0;
}

int control_apply(const struct control_msg *m, char *err, size_t errcap) {
  if (m->op == CONTROL_PING || m->op == CONTROL_STATUS) return 0;
  if (m->op == CONTROL_SYNC) {
    /* Before a filesystem-only pause: the layer must hold every write, as the VM's memory is not kept. Linux's
     * sync() returns once the writeback it started is done. */
    sync();
    return 0;
  }
  if (m->op == CONTROL_POWEROFF) {
    /* PID 1 owns the shutdown sequence (stop services, sync, power-off port). */
    if (kill(1, SIGTERM) < 0) { snprintf(err, errcap, "signal init: %s", strerror(errno)); return -1; }
    return 0;
  }
  if (m->has_time) {
    struct timespec ts = {.tv_sec = m->time_ns / 1000000000, .tv_nsec = m->time_ns % 1000000000};
    if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
      snprintf(err, errcap, "clock_settime: %s", strerror(errno));
      return -1;
    }
  }
  if (m->entropy_len && add_entropy(m->entropy, m->entropy_len, err, errcap) < 0) return -1;
  if (m->hostname[0] && sethostname(m->hostname, strlen(m->hostname)) < 0) {
    snprintf(err, errcap, "sethostname: %s", strerror(errno));
    return -1;
  }
  if (m->id[0] && write_id(m->id, err, errcap) < 0) return -1;
  return 0;
}

/* reply writes {"ok":true} or {"ok":false,"error":"..."}; err never holds '"' or '\\' that
 * need escaping except from strerror text, which is plain ASCII. */
static int reply(int fd, int ok, const char *err) {
  char out[256];
  int n;
  if (ok) n = snprintf(out, sizeof out, "{\"ok\":true}\n");
  else {
    char safe[160];
    size_t k = 0;
    for (const char *p = err; *p && k < sizeof safe - 1; p++) safe[k++] = (*p == '"' || *p == '\\') ? '\'' : *p;
    safe[k] = '\0';
    n = snprintf(out, sizeof out, "{\"ok\":false,\"error\":\"%s\"}\n", safe);
  }
  return sock_write_all(fd, out, (size_t)n);
}

/* status: what a clone is now (its id, fresh CRNG output, wall clock), so the host can check that clone hygiene
 * took effect: two clones of one snapshot must differ in id and random bytes. */
static int reply_status(int fd) {
  char id[80];
  file_read_text(SANDBOX_ID_FILE, id, sizeof id); /* "" when there is none yet */
  size_t k = 0;
  while (id[k] && cmdline_valid_id(id, k + 1)) k++; /* up to the newline; only id characters go into JSON */
  id[k] = '\0';
  uint8_t rnd[16];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return reply(fd, 0, "getrandom failed");
  char hex[33];
  for (size_t i = 0; i < sizeof rnd; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char out[256];
  int n = snprintf(out, sizeof out, "{\"ok\":true,\"id\":\"%s\",\"random\":\"%s\",\"time_ns\":%lld}\n", id, hex,
                   (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  return sock_write_all(fd, out, (size_t)n);
}

static void *control_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char *line = malloc(CONTROL_LINE_MAX + 2);
  struct control_msg *msg = malloc(sizeof *msg);
  if (line && msg) {
    for (;;) {
      long n = sock_read_line(fd, line, CONTROL_LINE_MAX + 2);
      if (n < 0) break;
      if (n == 0) continue;
      char err[160] = "";
      int ok = control_parse(line, (size_t)n, msg, err, sizeof err) == 0 && control_apply(msg, err, sizeof err) == 0;
      if (!ok) log_info("control: %s", err);
      else if (msg->op == CONTROL_HYGIENE) log_info("control: hygiene applied%s%s", msg->id[0] ? " id=" : "", msg->id);
      if (ok && msg->op == CONTROL_STATUS) {
        if (reply_status(fd) < 0) break;
      } else if (reply(fd, ok, err) < 0) break;
    }
  }
  free(line);
  free(msg);
  close(fd);
  return NULL;
}

void control_run(int listen_fd) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) { usleep(10000); continue; }
      log_errno("control: accept");
      return;
    }
    if (sock_spawn(control_conn, (void *)(intptr_t)fd) < 0) close(fd);
  }
}
