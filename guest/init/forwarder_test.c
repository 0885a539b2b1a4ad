// Tests the forwarder end to end on the host: a Unix socket stands in for vsock, real TCP
// targets on 127.0.0.1 (echo, half-close, refused), many concurrent connections; and the
// control channel's connection loop and replies.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "forwarder.h"
#include "sockets.h"
#include "test-modes.h"
#include "test-check.h"

static char unix_path[108];

static int tcp_listen(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 256) < 0) return -1;
  getsockname(fd, (struct sockaddr *)&a, &l);
  *port = ntohs(a.sin_port);
  return fd;
}

static void *echo_thread(void *arg) {
  test_echo_serve((int)(intptr_t)arg);
  return NULL;
}

/* A target that sends a greeting and then half-closes, but keeps reading until EOF and
 * reports the byte count: proves both half-closes propagate. */
static void *greeter_thread(void *arg) {
  int l = (int)(intptr_t)arg;
  for (;;) {
    int fd = accept(l, NULL, NULL);
    if (fd < 0) return NULL;
    sock_write_all(fd, "hello", 5);
    shutdown(fd, SHUT_WR);
    char buf[4096];
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
    close(fd);
    (void)total;
  }
}

static int fwd_connect(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memcpy(a.sun_path, unix_path, sizeof a.sun_path);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
  sock_set_rcvtimeo(fd, 5000); /* a lost EOF or reply fails the test instead of hanging it */
  return fd;
}

static long read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r < 0 ? -1 : (long)n;
    n += (size_t)r;
    if (n == cap) return (long)n;
  }
}

/* request sends a raw request and returns the reply line ("" on EOF). */
static void request(const char *req, size_t len, char *reply, size_t cap) {
  int fd = fwd_connect();
  sock_write_all(fd, req, len);
  long n = sock_read_line(fd, reply, cap);
  if (n < 0) reply[0] = '\0';
  close(fd);
}

struct roundtrip {
  uint16_t port;
  size_t bytes;
  int ok;
};

static void *writer(void *arg) {
  int *p = arg;
  size_t bytes = (size_t)p[1];
  char *buf = malloc(bytes);
  for (size_t i = 0; i < bytes; i++) buf[i] = (char)(i * 7 + 3);
  sock_write_all(p[0], buf, bytes);
  shutdown(p[0], SHUT_WR); /* half-close: the echo target must see EOF and close */
  free(buf);
  return NULL;
}

/* roundtrip pipelines the request line and payload (as the vmm may), then checks OK + echo + EOF. */
static void *roundtrip(void *arg) {
  struct roundtrip *r = arg;
  int fd = fwd_connect();
  char line[64];
  snprintf(line, sizeof line, "TCP %u\n", r->port);
  sock_write_all(fd, line, strlen(line));
  int wargs[2] = {fd, (int)r->bytes};
  pthread_t w;
  pthread_create(&w, NULL, writer, wargs);
  char ok[8];
  long n = sock_read_line(fd, ok, sizeof ok);
  char *buf = malloc(r->bytes + 1);
  long got = n == 2 && !strcmp(ok, "OK") ? read_all(fd, buf, r->bytes + 1) : -1;
  pthread_join(w, NULL);
  r->ok = got == (long)r->bytes;
  for (size_t i = 0; r->ok && i < r->bytes; i++)
    if (buf[i] != (char)(i * 7 + 3)) r->ok = 0;
  free(buf);
  close(fd);
  return NULL;
}

static void *control_thread(void *arg) {
  control_run((int)(intptr_t)arg);
  return NULL;
}

/* The control channel's connection loop and replies, with requests that change nothing on this
 * host (ping, errors, a hygiene message without fields). */
static void test_control_channel(void) {
  char path[108];
  snprintf(path, sizeof path, "/tmp/onebox-ctl-test-%d.sock", (int)getpid());
  unlink(path);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memcpy(a.sun_path, path, sizeof a.sun_path);
  if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) { failures++; return; }
  pthread_t t;
  pthread_create(&t, NULL, control_thread, (void *)(intptr_t)l);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { failures++; return; }
  sock_set_rcvtimeo(fd, 5000);
  const char *req = "{\"op\":\"ping\"}\n{\"op\":\"bogus\"}\nnot json\n\n{\"op\":\"hygiene\"}\n";
  sock_write_all(fd, req, strlen(req));
  shutdown(fd, SHUT_WR);
  char buf[512];
  long n = read_all(fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = '\0';
  CHECK(!strcmp(buf, "{\"ok\":true}\n{\"ok\":false,\"error\":\"unknown op\"}\n"
                     "{\"ok\":false,\"error\":\"not a JSON object\"}\n{\"ok\":true}\n"));
  close(fd);
  /* an overlong line ends the connection without a reply */
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  connect(fd, (struct sockaddr *)&a, sizeof a);
  sock_set_rcvtimeo(fd, 5000);
  static char huge[CONTROL_LINE_MAX + 100];
  memset(huge, 'x', sizeof huge);
  sock_write_all(fd, huge, sizeof huge);
  CHECK(read_all(fd, buf, sizeof buf) <= 0); /* EOF, or a reset for the unread rest */
  close(fd);
  unlink(path);
}

static void *forwarder_thread(void *arg) {
  forwarder_run((int)(intptr_t)arg, fwd_dial_tcp_loopback);
  return NULL;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  snprintf(unix_path, sizeof unix_path, "/tmp/onebox-fwd-test-%d.sock", (int)getpid());
  unlink(unix_path);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memcpy(a.sun_path, unix_path, sizeof a.sun_path);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 256) < 0) { perror("bind"); return 1; }

  uint16_t echo_port, greet_port, dead_port;
  int echo_fd = tcp_listen(&echo_port), greet_fd = tcp_listen(&greet_port), dead_fd = tcp_listen(&dead_port);
  close(dead_fd); /* nothing listens there now: connect is refused */
  pthread_t t;
  pthread_create(&t, NULL, echo_thread, (void *)(intptr_t)echo_fd);
  pthread_create(&t, NULL, greeter_thread, (void *)(intptr_t)greet_fd);

  pthread_t ft;
  pthread_create(&ft, NULL, forwarder_thread, (void *)(intptr_t)lfd);

  char reply[128];
  /* 1. one round trip with a payload larger than any socket buffer */
  struct roundtrip big = {echo_port, 4 << 20, 0};
  roundtrip(&big);
  CHECK(big.ok);

  /* 2. many concurrent connections */
  enum { N = 64 };
  struct roundtrip rs[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    rs[i] = (struct roundtrip){echo_port, 65536 + (size_t)i * 1000, 0};
    pthread_create(&th[i], NULL, roundtrip, &rs[i]);
  }
  int all = 1;
  for (int i = 0; i < N; i++) { pthread_join(th[i], NULL); all &= rs[i].ok; }
  CHECK(all);

  /* 3. the target half-closes first: we get its bytes then EOF, and can still send */
  int fd = fwd_connect();
  char line[32];
  snprintf(line, sizeof line, "TCP %u\n", greet_port);
  sock_write_all(fd, line, strlen(line));
  CHECK(sock_read_line(fd, reply, sizeof reply) == 2 && !strcmp(reply, "OK"));
  char buf[16];
  CHECK(read_all(fd, buf, sizeof buf) == 5 && !memcmp(buf, "hello", 5));
  CHECK(sock_write_all(fd, "after", 5) == 0);
  shutdown(fd, SHUT_WR);
  close(fd);

  /* 4. errors: refused port, malformed and overlong lines, EOF before the line */
  snprintf(line, sizeof line, "TCP %u\n", dead_port);
  request(line, strlen(line), reply, sizeof reply);
  CHECK(!strncmp(reply, "ERR connect 127.0.0.1:", 22) && strstr(reply, "refused"));
  const char *bad[] = {"TCP 0\n", "TCP 70000\n", "GET / HTTP/1.1\n", "TCP 080\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    request(bad[i], strlen(bad[i]), reply, sizeof reply);
    CHECK(!strncmp(reply, "ERR bad request", 15));
  }
  char longl[100];
  memset(longl, '1', sizeof longl);
  memcpy(longl, "TCP ", 4);
  request(longl, sizeof longl, reply, sizeof reply);
  CHECK(!strncmp(reply, "ERR bad request", 15));
  fd = fwd_connect();
  shutdown(fd, SHUT_WR);
  CHECK(sock_read_line(fd, reply, sizeof reply) == -1 || !strncmp(reply, "ERR", 3));
  close(fd);

  test_control_channel();

  /* 5. every connection was torn down: no leaked threads or fds */
  for (int i = 0; i < 200 && forwarder_active() != 0; i++) usleep(10000);
  CHECK(forwarder_active() == 0);

  unlink(unix_path);
  if (failures) {
    printf("forwarder_test: %d failures\n", failures);
    return 1;
  }
  printf("forwarder_test: ok\n");
  return 0;
}
