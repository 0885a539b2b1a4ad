// virtio-vsock after a restore: host connections wait until the guest has handled TRANSPORT_RESET.
//
// Why: after a snapshot restore the device sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (persist.c). Linux handles it in
// a work item (virtio_transport_event_work): it re-reads the guest CID, resets every connected socket, and only then
// re-posts the event buffer and kicks the event queue. A REQUEST that reaches the guest before that work ran is
// accepted (with the old CID, if the clone has a new one) and its fresh socket is reset with the pre-snapshot ones:
// the host sees its connection die right after `OK` and must dial again (~1 s under nested emulation). The rx and
// event completions share one interrupt and Linux walks the queues in order (rx before event), so a REQUEST that
// races the reset loses often. So REQUESTs are held until the event queue's available index moves past where it
// was when the reset was delivered: the guest re-posted the buffer, which it does only after handling the event.
//
// Bounded: a guest that never re-posts gets its held connections closed after reset_hold_ms (the host sees EOF
// without `OK`, as for a refused port) and the hold ends, so later connections go straight through as before.
// Nothing is buffered meanwhile: a held connection's host fd is not read (only `CONNECT`'s leftovers, <= 64 bytes).
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "vsock.h"

static void arm(struct vsock *vs, uint32_t ms) {
  struct itimerspec it = {.it_value = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L}};
  if (vs->hold_timer >= 0) timerfd_settime(vs->hold_timer, 0, &it, NULL); /* ms 0 disarms */
}

void vsock_reset_hold_end(struct vsock *vs) {
  if (!vs->reset_hold) return;
  vs->reset_hold = false;
  arm(vs, 0);
  vs->pending_dirty = true; /* held REQUESTs go out on the next flush */
}

bool vsock_reset_hold_active(struct vsock *vs) {
  if (!vs->reset_hold) return false;
  /* Only a guest that finished its event work re-posts buffers (see the top of this file). */
  if (!virtio_dev_running(vs->dev) || virtq_avail_idx(&vs->dev->queues[VSOCK_QUEUE_EVENT]) != vs->reset_avail) {
    vsock_reset_hold_end(vs);
    return false;
  }
  return true;
}

void vsock_reset_hold_begin(struct vsock *vs, uint16_t avail) {
  vs->reset_hold = true;
  vs->reset_avail = avail;
  /* Linux kicks after re-posting only if avail_event says so (EVENT_IDX): ask for exactly that kick. */
  virtq_notify_past(&vs->dev->queues[VSOCK_QUEUE_EVENT], avail);
  arm(vs, vs->reset_hold_ms ? vs->reset_hold_ms : 1);
}

/* Timer fired: the guest did not re-post an event buffer in time. Close what waits for it and stop holding. */
static void hold_expired(void *ctx, uint32_t events) {
  struct vsock *vs = ctx;
  uint64_t ticks;
  if (read(vs->hold_timer, &ticks, sizeof ticks) < 0) { /* EAGAIN: disarmed meanwhile */
  }
  pthread_mutex_lock(&vs->dev->lock);
  if (vsock_reset_hold_active(vs)) {
    uint32_t closed = 0;
    for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
      struct vsock_conn *c = vs->slots[i].conn;
      if (c && c->state == CONN_CONNECTING && (c->pending & PEND_REQUEST)) {
        vsock_conn_close(c, false); /* the guest never heard of it: no RST */
        closed++;
      }
    }
    fprintf(stderr, "virtio-vsock: the guest did not handle TRANSPORT_RESET within %u ms; closed %u waiting host "
                    "connection(s), no longer holding\n", vs->reset_hold_ms, closed);
    vsock_reset_hold_end(vs);
  }
  vsock_flush_pending(vs);
  pthread_mutex_unlock(&vs->dev->lock);
}

int vsock_reset_hold_init(struct vsock *vs) {
  vs->reset_hold_ms = VSOCK_RESET_HOLD_MS;
  vs->hold_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (vs->hold_timer < 0) return -1;
  int rc = evloop_add(vs->dev->env.loop, vs->hold_timer, EPOLLIN, hold_expired, vs);
  if (rc < 0) {
    close(vs->hold_timer);
    vs->hold_timer = -1;
  }
  return rc;
}

/* Lock held; the caller waits for the loop (evloop_barrier) before freeing vs. */
void vsock_reset_hold_destroy(struct vsock *vs) {
  if (vs->hold_timer < 0) return;
  evloop_del(vs->dev->env.loop, vs->hold_timer);
  close(vs->hold_timer);
  vs->hold_timer = -1;
  vs->reset_hold = false;
}
