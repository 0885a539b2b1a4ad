// Raising a device interrupt: one write to the eventfd that KVM_IRQFD ties to the line's GSI.
#include "irq.h"
#include <errno.h>
#include <unistd.h>

void irq_line_trigger(const struct irq_line *irq) {
  if (irq->eventfd < 0) return; /* not wired (unit tests without a VM) */
  uint64_t one = 1;
  /* eventfd(2): a write adds to the counter; EAGAIN only if the counter would overflow, which means
   * an interrupt is already pending, so dropping this one loses nothing (the line is edge-triggered). */
  while (write(irq->eventfd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}
