// Tests the supervisor on the host: a crashing service is restarted with backoff, its conf's
// env/cwd/log apply, an in-process service runs in a child, a missing program is not started.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "services.h"

static int failures;
#define CHECK(c)                                                   \
  do {                                                             \
    if (!(c)) {                                                    \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);          \
      failures++;                                                  \
    }                                                              \
  } while (0)

static char dir[64];

static void write_file(const char *name, const char *text, mode_t mode) {
  char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) exit(2);
  close(fd);
}

static int count_lines(const char *name) {
  char p[128], buf[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int fd = open(p, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  int lines = 0;
  for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
  return lines;
}

static void in_process(void) {
  char p[128];
  snprintf(p, sizeof p, "%s/fn-ran", dir);
  close(open(p, O_WRONLY | O_CREAT, 0644));
  pause(); /* stays up until services_stop_all */
  _exit(0);
}

/* run_loop is PID 1's loop in small: tick, then reap, for ms. */
static void run_loop(int ms) {
  long long end = (long long)services_now_ms() + ms;
  while ((long long)services_now_ms() < end) {
    services_tick();
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) services_reaped(pid, status);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/onebox-svc-test-%d", (int)getpid());
  mkdir(dir, 0755);
  char text[512];
  /* The crasher appends "$FOO $PWD" to runs and exits 3: restarts at ~0, 100, 300, 700 ms. */
  snprintf(text, sizeof text, "#!/bin/sh\necho \"$FOO $(pwd)\" >> %s/runs\necho out-$FOO\nexit 3\n", dir);
  write_file("crash.sh", text, 0755);
  snprintf(text, sizeof text, "exec=%s/crash.sh\nenv=FOO=bar\nenv=PATH=/usr/bin:/bin\ncwd=/tmp\nlog=%s/crash.log\n", dir, dir);
  write_file("crash.conf", text, 0644);
  snprintf(text, sizeof text, "exec=%s/nope\n", dir);
  write_file("missing.conf", text, 0644);
  char crash_conf[128], missing_conf[128];
  snprintf(crash_conf, sizeof crash_conf, "%s/crash.conf", dir);
  snprintf(missing_conf, sizeof missing_conf, "%s/missing.conf", dir);
  services_add_conf("crash", crash_conf);
  services_add_conf("missing", missing_conf);
  services_add_fn("fn", in_process);

  run_loop(1000);
  int runs = count_lines("runs");
  CHECK(runs >= 3 && runs <= 5); /* backoff: not 200 runs of a tight loop, not a single one */
  char p[128], buf[256] = "";
  snprintf(p, sizeof p, "%s/runs", dir);
  int fd = open(p, O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  buf[n > 0 ? n : 0] = '\0';
  CHECK(!strncmp(buf, "bar /tmp\n", 9));
  CHECK(count_lines("crash.log") == runs);
  CHECK(!services_running("missing"));
  CHECK(services_running("fn"));
  snprintf(p, sizeof p, "%s/fn-ran", dir);
  CHECK(access(p, F_OK) == 0);

  services_stop_all(1000);
  CHECK(!services_running("fn"));
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) failures++;
  if (failures) {
    printf("services_test: %d failures (runs=%d)\n", failures, runs);
    return 1;
  }
  printf("services_test: ok (runs=%d)\n", runs);
  return 0;
}
