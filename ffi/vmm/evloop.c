// The VM process's event loop: one epoll thread that runs device back-end callbacks for registered fds.
#include "evloop.h"
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* One registration. Entries are never freed while the loop runs (a callback may be running on another
 * entry's data when evloop_del is called from a vCPU thread); they are recycled by fd instead. */
struct evloop_entry {
  int fd;
  evloop_fn fn;
  void *ctx;
  int active;
  struct evloop_entry *next;
};

struct evloop {
  int epfd;
  int wakefd; /* eventfd used to stop the thread */
  pthread_t thread;
  int started;
  volatile int stopping;
  pthread_mutex_t lock;
  struct evloop_entry *entries;
};

struct evloop *evloop_create(void) {
  struct evloop *loop = calloc(1, sizeof *loop);
  if (!loop) return NULL;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->epfd < 0 || loop->wakefd < 0) goto fail;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) goto fail;
  pthread_mutex_init(&loop->lock, NULL);
  return loop;
fail:
  if (loop->epfd >= 0) close(loop->epfd);
  if (loop->wakefd >= 0) close(loop->wakefd);
  free(loop);
  return NULL;
}

static void *evloop_run(void *arg) {
  struct evloop *loop = arg;
  struct epoll_event events[32];
  while (!loop->stopping) {
    int n = epoll_wait(loop->epfd, events, 32, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; i++) {
      struct evloop_entry *e = events[i].data.ptr;
      if (!e) continue; /* the wake eventfd: loop->stopping is checked above */
      pthread_mutex_lock(&loop->lock);
      int active = e->active;
      evloop_fn fn = e->fn;
      void *ctx = e->ctx;
      pthread_mutex_unlock(&loop->lock);
      /* An entry removed earlier in this batch must not fire: its owner may have freed ctx. */
      if (active && fn) fn(ctx, events[i].events);
    }
  }
  return NULL;
}

int evloop_start(struct evloop *loop) {
  int rc = pthread_create(&loop->thread, NULL, evloop_run, loop);
  if (rc) return -rc;
  loop->started = 1;
  return 0;
}

static struct evloop_entry *evloop_find(struct evloop *loop, int fd, int active) {
  for (struct evloop_entry *e = loop->entries; e; e = e->next)
    if (e->fd == fd && e->active == active) return e;
  return NULL;
}

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *ctx) {
  pthread_mutex_lock(&loop->lock);
  if (evloop_find(loop, fd, 1)) {
    pthread_mutex_unlock(&loop->lock);
    return -EEXIST;
  }
  struct evloop_entry *e = evloop_find(loop, fd, 0);
  if (!e) {
    e = calloc(1, sizeof *e);
    if (!e) {
      pthread_mutex_unlock(&loop->lock);
      return -ENOMEM;
    }
    e->next = loop->entries;
    loop->entries = e;
  }
  e->fd = fd;
  e->fn = fn;
  e->ctx = ctx;
  e->active = 1;
  struct epoll_event ev = {.events = events, .data.ptr = e};
  int rc = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
  if (rc) e->active = 0;
  pthread_mutex_unlock(&loop->lock);
  return rc;
}

int evloop_mod(struct evloop *loop, int fd, uint32_t events) {
  pthread_mutex_lock(&loop->lock);
  struct evloop_entry *e = evloop_find(loop, fd, 1);
  int rc = -ENOENT;
  if (e) {
    struct epoll_event ev = {.events = events, .data.ptr = e};
    rc = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
  }
  pthread_mutex_unlock(&loop->lock);
  return rc;
}

int evloop_del(struct evloop *loop, int fd) {
  pthread_mutex_lock(&loop->lock);
  struct evloop_entry *e = evloop_find(loop, fd, 1);
  int rc = -ENOENT;
  if (e) {
    rc = epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
    e->active = 0;
    e->fn = NULL;
    e->ctx = NULL;
  }
  pthread_mutex_unlock(&loop->lock);
  return rc;
}

struct loop_barrier {
  int fd;
  sem_t done;
};

static void barrier_fire(void *ctx, uint32_t events) {
  struct loop_barrier *b = ctx;
  uint64_t v;
  if (read(b->fd, &v, sizeof v) == sizeof v) sem_post(&b->done);
}

void evloop_barrier(struct evloop *loop) {
  struct loop_barrier b = {.fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK)};
  if (b.fd < 0) return;
  sem_init(&b.done, 0, 0);
  if (evloop_add(loop, b.fd, EPOLLIN, barrier_fire, &b) == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    while (sem_timedwait(&b.done, &ts) < 0 && errno == EINTR) {
    }
    evloop_del(loop, b.fd);
  }
  close(b.fd);
  sem_destroy(&b.done);
}

void evloop_destroy(struct evloop *loop) {
  if (!loop) return;
  if (loop->started) {
    loop->stopping = 1;
    uint64_t one = 1;
    if (write(loop->wakefd, &one, sizeof one) < 0) { /* the thread still sees stopping on its next wake */
    }
    pthread_join(loop->thread, NULL);
  }
  close(loop->epfd);
  close(loop->wakefd);
  pthread_mutex_destroy(&loop->lock);
  for (struct evloop_entry *e = loop->entries, *next; e; e = next) {
    next = e->next;
    free(e);
  }
  free(loop);
}
