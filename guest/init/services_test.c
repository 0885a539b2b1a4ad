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

#include "file-io.h"
#include "services.h"
#include "test-check.h"

static char dir[64];

static void write_file(const char *name, const char *text, mode_t mode) {
  char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) exit(2);
  close(fd);
}

static ssize_t read_back(const char *name, char *buf, size_t cap) {
  char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return file_read_text(p, buf, cap);
}

static int count_lines(const char *name) {
  char buf[4096];
  int lines = 0;
  if (read_back(name, buf, sizeof buf) > 0)
    for (const char *c = buf; *c; c++) lines += *c == '\n';
  return lines;
}

/* file-io: a file longer than the buffer is cut and terminated; a missing one reads as "" and -1. */
static void test_file_io(void) {
  char buf[8];
  write_file("ten", "0123456789", 0644);
  CHECK(read_back("ten", buf, sizeof buf) == 7 && !strcmp(buf, "0123456"));
  CHECK(read_back("absent", buf, sizeof buf) == -1 && buf[0] == '\0');
  char p[128];
  snprintf(p, sizeof p, "%s/ten", dir);
  CHECK(file_write_text(p, "ab") == 0 && read_back("ten", buf, sizeof buf) == 7 && !strcmp(buf, "ab23456"));
  snprintf(p, sizeof p, "%s/absent", dir);
  CHECK(file_write_text(p, "x") == -1); /* knobs are never created */
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
  test_file_io();
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
  char p[128], buf[256];
  read_back("runs", buf, sizeof buf);
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
