// The VM process's event loop: one epoll thread that runs device back-end callbacks (sockets, timers).
#pragma once
#include <stdint.h>

struct evloop;
/* Called on the loop thread with the epoll events that fired. */
typedef void (*evloop_fn)(void *ctx, uint32_t events);

struct evloop *evloop_create(void);
/* Starts the loop thread. Returns 0 or -errno. */
int evloop_start(struct evloop *loop);
/* Register, change or remove fd. Callable from any thread (including callbacks). Return 0 or -errno. */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *ctx);
int evloop_mod(struct evloop *loop, int fd, uint32_t events);
int evloop_del(struct evloop *loop, int fd);
/* Returns once the loop thread has finished any callback it had already picked up (it runs them one at a time, so
 * once a callback queued now runs, the earlier ones are done): after evloop_del, no callback of that fd is still
 * running. Bounded (1 s), in case the loop was never started. */
void evloop_barrier(struct evloop *loop);
/* Stops the thread and frees the loop (fds are not closed). */
void evloop_destroy(struct evloop *loop);
