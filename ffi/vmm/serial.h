// 8250/16550 UART at COM1: guest output to the (capped) console log, a tail ring for the exit record, panic detection.
#pragma once
#include <pthread.h>
#include <stddef.h>
#include "console_log.h"
#include "vm.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_PORTS 8
#define SERIAL_TAIL_SIZE 8192

struct serial {
  struct vm *vm;
  struct irq_line irq;
  struct console_log log; /* fd -1: output only kept in the ring; log.max: --console-max */
  pthread_mutex_t lock;
  /* 16550 registers (PC16550D datasheet, table 2) */
  uint8_t ier, lcr, mcr, scr, dll, dlm;
  bool thre_pending; /* THR-empty interrupt raised and not yet acknowledged by an IIR read */
  /* output */
  char line[256];
  size_t line_len;
  char tail[SERIAL_TAIL_SIZE];
  size_t tail_pos;     /* next write index */
  bool tail_wrapped;
  size_t panic_match;  /* chars of the panic marker matched so far */
};

void serial_init(struct serial *s, struct vm *vm, int console_fd);
/* Port I/O handlers for bus_register at SERIAL_COM1_BASE (offset 0..7). */
void serial_pio_read(void *ctx, uint64_t offset, uint8_t *data, uint32_t len);
void serial_pio_write(void *ctx, uint64_t offset, const uint8_t *data, uint32_t len);
/* Flushes the pending partial line to the console file. */
void serial_flush(struct serial *s);
/* Copies the last output (oldest first, NUL-terminated) into buf; returns its length. */
size_t serial_tail(struct serial *s, char *buf, size_t buflen);

/* Snapshot state: the register file (legacy_persist.c). */
struct serial_state { uint8_t ier, lcr, mcr, scr, dll, dlm, thre_pending, reserved; };
void serial_save(struct serial *s, struct serial_state *out);
void serial_restore(struct serial *s, const struct serial_state *st);
