// Split virtqueue (virtio v1.2 §2.7): validate rings, pop available descriptor chains, push used elements.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "../guest_mem.h"
#include "spec.h"

/* Largest queue any onebox device offers (QueueNumMax). Also bounds a chain's length (§2.7.5.3.1:
 * a chain is at most the queue size long, so longer means a loop). */
#define VIRTQ_MAX_SIZE 256

struct virtq {
  uint16_t num;  /* QueueNum chosen by the driver */
  bool ready;    /* QueueReady, set only after the rings were validated */
  uint64_t desc_gpa, avail_gpa, used_gpa;
  /* Resolved host pointers, valid while ready (guest memory never shrinks while a device exists). */
  uint8_t *desc, *avail, *used;
  uint16_t last_avail; /* next available ring slot the device consumes */
  uint16_t used_idx;   /* shadow of used->idx */
  bool owe_irq;        /* used elements pushed since the last notification */
  bool event_idx;      /* VIRTIO_F_EVENT_IDX negotiated: used_event / avail_event steer notifications */
  uint16_t signalled_used; /* used_idx when the driver was last considered for an interrupt */
  bool signalled_valid;    /* false until the first interrupt decision after activation */
};

/* One popped chain: readable (driver->device) buffers first, then writable ones (§2.7.4.2). */
struct virtq_chain {
  uint16_t head;
  uint16_t n_out, n_in;              /* iov[0..n_out) readable, iov[n_out..n_out+n_in) writable */
  uint64_t out_len, in_len;          /* total readable / writable bytes */
  struct iovec iov[VIRTQ_MAX_SIZE];  /* host pointers, each range checked against guest memory; last member
                                        (virtq_pop clears only what precedes it) */
};

/* Back to the state after reset (§4.2.3.1: QueueReady 0, QueueNum = max). */
void virtq_reset(struct virtq *q, uint16_t num_max);
/* Validates num and the three ring areas for QueueReady=1. Returns NULL, or why they are invalid. */
const char *virtq_activate(struct virtq *q, const struct guest_mem *m, uint16_t num_max, bool event_idx);
/* 1 = chain popped into c, 0 = ring empty, -1 = malformed ring (*why says how; the caller must stop
 * using the queue until reset). */
int virtq_pop(struct virtq *q, const struct guest_mem *m, struct virtq_chain *c, const char **why);
/* Gives back the chain popped last (not yet pushed), e.g. when the device had nothing to put in it. */
void virtq_unpop(struct virtq *q);
/* Returns the chain with `len` bytes written into its writable buffers. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* The driver's available index as it is now in guest memory (buffers ever posted, mod 2^16). */
uint16_t virtq_avail_idx(const struct virtq *q);
/* With EVENT_IDX: ask the driver to notify as soon as its available index moves past `idx` (§2.7.10
 * avail_event). Without EVENT_IDX the driver notifies anyway (the device never sets NO_NOTIFY). */
void virtq_notify_past(struct virtq *q, uint16_t idx);
/* True if the driver wants an interrupt for what was pushed (clears the debt). */
bool virtq_take_irq(struct virtq *q);

/* Copy from the chain's readable bytes at `off` / into its writable bytes at `off`; return bytes done. */
size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *dst, size_t len);
size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *src, size_t len);
/* Fill iov (at most max entries) with the writable range [off, off+len); returns the entry count. */
int virtq_chain_in_iov(const struct virtq_chain *c, uint64_t off, uint64_t len, struct iovec *iov, int max);
/* Same for the readable range. */
int virtq_chain_out_iov(const struct virtq_chain *c, uint64_t off, uint64_t len, struct iovec *iov, int max);
