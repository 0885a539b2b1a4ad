// Supervision by PID 1: the agent and extra services, started, restarted with backoff, reaped.
#include "services.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "file-io.h"
#include "log.h"
#include "service-conf.h"
#include "user-db.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
/* A run this long counts as healthy and resets the backoff. */
#define HEALTHY_RUN_MS 30000
#define MISSING_RETRY_MS 30000

static struct service services[SERVICES_MAX];
static int nservices;

uint64_t services_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct service *service_new(const char *name) {
  if (nservices == SERVICES_MAX) {
    log_info("services: too many, ignoring %s", name);
    return NULL;
  }
  struct service *s = &services[nservices++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  return s;
}

struct service *services_add_conf(const char *name, const char *conf_path) {
  struct service *s = service_new(name);
  if (s) snprintf(s->conf_path, sizeof s->conf_path, "%s", conf_path);
  return s;
}

struct service *services_add_fn(const char *name, void (*fn)(void)) {
  struct service *s = service_new(name);
  if (s) s->fn = fn;
  return s;
}

void services_scan_dir(void) {
  DIR *d = opendir(SERVICES_DIR);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 6 || n > 5 + 31 || strcmp(e->d_name + n - 5, ".conf") || e->d_name[0] == '.') continue;
    char name[32], path[128];
    snprintf(name, sizeof name, "%.*s", (int)(n - 5), e->d_name);
    snprintf(path, sizeof path, "%s/%s", SERVICES_DIR, e->d_name);
    services_add_conf(name, path);
  }
  closedir(d);
}

/* child_setup runs in the forked child before exec; only exits on failure. */
static void child_exec(struct service_conf *c, const struct user_entry *u) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  setsid();
  int in = open("/dev/null", O_RDONLY);
  int out = !strcmp(c->log, "null") ? open("/dev/null", O_WRONLY)
            : !strcmp(c->log, "console") ? open("/dev/console", O_WRONLY | O_NOCTTY)
            : open(c->log, O_WRONLY | O_CREAT | O_APPEND, 0640);
  if (in >= 0) dup2(in, 0);
  if (out >= 0) { dup2(out, 1); dup2(out, 2); }
  if (u) {
    if (setgroups(0, NULL) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0) _exit(126);
  }
  if (chdir(c->cwd) < 0) _exit(126);
  execve(c->argv[0], c->argv, c->envp);
  _exit(127);
}

static void service_start(struct service *s, uint64_t now) {
  static struct service_conf conf; /* large; PID 1 is single-threaded */
  struct user_entry user, *u = NULL;
  pid_t pid;
  if (s->fn) {
    pid = fork();
    if (pid == 0) {
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      s->fn();
      _exit(1);
    }
  } else {
    /* One byte over the parser's limit, so a too-large conf is refused rather than cut short. */
    char text[SVC_TEXT_MAX + 1], err[128];
    ssize_t len = file_read_text(s->conf_path, text, sizeof text);
    if (len < 0) {
      if (!s->missing_logged) log_errno("services: %s: read %s", s->name, s->conf_path);
      s->missing_logged = true;
      s->restart_at_ms = now + MISSING_RETRY_MS;
      return;
    }
    if (service_conf_parse(text, (size_t)len, &conf, err, sizeof err) < 0) {
      if (!s->missing_logged) log_info("services: %s: %s: %s", s->name, s->conf_path, err);
      s->missing_logged = true;
      s->restart_at_ms = now + MISSING_RETRY_MS;
      return;
    }
    if (access(conf.argv[0], X_OK) < 0) {
      if (!s->missing_logged) log_errno("services: %s: program %s missing", s->name, conf.argv[0]);
      s->missing_logged = true;
      s->restart_at_ms = now + MISSING_RETRY_MS;
      return;
    }
    if (conf.user && strcmp(conf.user, "root")) {
      static char passwd[65536];
      ssize_t plen = file_read_text("/etc/passwd", passwd, sizeof passwd);
      if (plen < 0 || !user_db_find(passwd, (size_t)plen, conf.user, &user)) {
        log_info("services: %s: user %s not found", s->name, conf.user);
        s->restart_at_ms = now + MISSING_RETRY_MS;
        return;
      }
      u = &user;
    }
    pid = fork();
    if (pid == 0) child_exec(&conf, u);
  }
  if (pid < 0) {
    log_errno("services: fork %s", s->name);
    s->restart_at_ms = now + BACKOFF_FIRST_MS;
    return;
  }
  s->missing_logged = false;
  s->pid = pid;
  s->started_ms = now;
  log_info("services: started %s (pid %d)", s->name, (int)pid);
}

long services_tick(void) {
  uint64_t now = services_now_ms();
  long next = -1;
  for (int i = 0; i < nservices; i++) {
    struct service *s = &services[i];
    if (s->pid) continue;
    if (s->restart_at_ms <= now) service_start(s, now);
    if (!s->pid) {
      long wait = (long)(s->restart_at_ms - now);
      if (wait < 0) wait = 0;
      if (next < 0 || wait < next) next = wait;
    }
  }
  return next;
}

void services_reaped(pid_t pid, int status) {
  for (int i = 0; i < nservices; i++) {
    struct service *s = &services[i];
    if (s->pid != pid) continue;
    uint64_t now = services_now_ms();
    s->pid = 0;
    if (now - s->started_ms >= HEALTHY_RUN_MS) s->failures = 0;
    uint64_t delay = BACKOFF_FIRST_MS;
    for (unsigned k = 0; k < s->failures && delay < BACKOFF_MAX_MS; k++) delay *= 2;
    if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
    s->failures++;
    s->restart_at_ms = now + delay;
    if (WIFSIGNALED(status))
      log_info("services: %s died (signal %d); restart in %llu ms", s->name, WTERMSIG(status), (unsigned long long)delay);
    else
      log_info("services: %s exited (status %d); restart in %llu ms", s->name, WEXITSTATUS(status), (unsigned long long)delay);
    return;
  }
}

bool services_running(const char *name) {
  for (int i = 0; i < nservices; i++)
    if (!strcmp(services[i].name, name)) return services[i].pid != 0;
  return false;
}

void services_stop_all(int ms) {
  for (int i = 0; i < nservices; i++)
    if (services[i].pid) kill(-services[i].pid, SIGTERM), kill(services[i].pid, SIGTERM);
  uint64_t deadline = services_now_ms() + (uint64_t)ms;
  for (;;) {
    int status;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p > 0) {
      for (int i = 0; i < nservices; i++)
        if (services[i].pid == p) services[i].pid = 0;
      continue;
    }
    if (p < 0 && errno == ECHILD) return;
    if (services_now_ms() >= deadline) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < nservices; i++)
    if (services[i].pid) kill(-services[i].pid, SIGKILL), kill(services[i].pid, SIGKILL);
}
