// An interrupt line a device raises: an eventfd registered with KVM_IRQFD for one GSI.
#pragma once
#include <stdint.h>

struct irq_line {
  int eventfd;   /* -1 until wired by the machine assembler */
  uint32_t gsi;  /* IOAPIC pin */
};

/* Raises the interrupt (edge). Safe from any thread. */
void irq_line_trigger(const struct irq_line *irq);
