// 8250/16550 UART emulation (transmit only) at COM1, with console logging, a tail ring and kernel panic detection.
#include "serial.h"
#include <string.h>
#include <unistd.h>

/* Register offsets from the base port (PC16550D datasheet, table 2); DLAB = LCR bit 7 switches 0/1 to the divisor. */
#define UART_RBR_THR 0
#define UART_IER 1
#define UART_IIR_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_LCR_DLAB 0x80
#define UART_IER_THRI 0x02       /* enable transmitter-holding-register-empty interrupt */
#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI 0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

/* printk's panic() line (kernel/panic.c). */
static const char PANIC_MARKER[] = "Kernel panic - not syncing";

void serial_init(struct serial *s, struct vm *vm, int console_fd) {
  memset(s, 0, sizeof *s);
  s->vm = vm;
  console_log_attach(&s->log, console_fd, CONSOLE_LOG_MAX_DEFAULT);
  s->irq.eventfd = -1;
  s->irq.gsi = SERIAL_COM1_IRQ;
  s->mcr = UART_MCR_OUT2;
  pthread_mutex_init(&s->lock, NULL);
}

/* The last n bytes of the ring before its newest `skip` bytes (those are the pending line itself). */
static size_t ring_copy_locked(struct serial *s, char *buf, size_t n, size_t skip) {
  size_t total = s->tail_wrapped ? SERIAL_TAIL_SIZE : s->tail_pos;
  total = total > skip ? total - skip : 0;
  if (n > total) n = total;
  size_t start = (s->tail_pos + 2 * SERIAL_TAIL_SIZE - skip - n) % SERIAL_TAIL_SIZE;
  for (size_t i = 0; i < n; i++) buf[i] = s->tail[(start + i) % SERIAL_TAIL_SIZE];
  return n;
}

static void serial_flush_locked(struct serial *s) {
  char recent[SERIAL_TAIL_SIZE];
  size_t recent_len = 0;
  /* Only a rotation of a log that cannot be read back needs the ring (console_log_write). */
  if (s->log.fd >= 0 && s->log.size + s->line_len > s->log.max)
    recent_len = ring_copy_locked(s, recent, sizeof recent, s->line_len);
  console_log_write(&s->log, s->line, s->line_len, recent, recent_len);
  s->line_len = 0;
}

void serial_flush(struct serial *s) {
  pthread_mutex_lock(&s->lock);
  serial_flush_locked(s);
  pthread_mutex_unlock(&s->lock);
}

static void serial_emit(struct serial *s, char c) {
  s->tail[s->tail_pos++] = c;
  if (s->tail_pos == SERIAL_TAIL_SIZE) {
    s->tail_pos = 0;
    s->tail_wrapped = true;
  }
  /* Whole lines go to the file: one write per line instead of one per byte. */
  s->line[s->line_len++] = c;
  if (c == '\n' || s->line_len == sizeof s->line) serial_flush_locked(s);
  /* The marker has no repeated prefix, so a mismatch restarts the match at this character. */
  if (c == PANIC_MARKER[s->panic_match]) {
    if (++s->panic_match == sizeof PANIC_MARKER - 1) {
      s->panic_match = 0;
      atomic_store(&s->vm->panic_seen, true);
      uint64_t one = 1; /* wake the control loop: it gives the panic message a moment, then ends the VM */
      if (write(s->vm->exit_efd, &one, sizeof one) < 0) {
      }
    }
  } else {
    s->panic_match = c == PANIC_MARKER[0] ? 1 : 0;
  }
}

size_t serial_tail(struct serial *s, char *buf, size_t buflen) {
  pthread_mutex_lock(&s->lock);
  size_t total = s->tail_wrapped ? SERIAL_TAIL_SIZE : s->tail_pos;
  size_t n = total < buflen - 1 ? total : buflen - 1;
  size_t start = (s->tail_pos + SERIAL_TAIL_SIZE - n) % SERIAL_TAIL_SIZE;
  for (size_t i = 0; i < n; i++) buf[i] = s->tail[(start + i) % SERIAL_TAIL_SIZE];
  buf[n] = 0;
  pthread_mutex_unlock(&s->lock);
  return n;
}

/* Edge interrupt when the transmitter is empty and the guest asked for it (our THR empties instantly). */
static void serial_update_irq(struct serial *s) {
  if ((s->ier & UART_IER_THRI) && !s->thre_pending) {
    s->thre_pending = true;
    irq_line_trigger(&s->irq);
  }
}

void serial_pio_read(void *ctx, uint64_t offset, uint8_t *data, uint32_t len) {
  struct serial *s = ctx;
  memset(data, 0, len);
  pthread_mutex_lock(&s->lock);
  bool dlab = s->lcr & UART_LCR_DLAB;
  switch (offset) {
    case UART_RBR_THR: data[0] = dlab ? s->dll : 0; break; /* no input */
    case UART_IER: data[0] = dlab ? s->dlm : s->ier; break;
    case UART_IIR_FCR:
      if (s->thre_pending && (s->ier & UART_IER_THRI)) {
        data[0] = UART_IIR_THRI;
        s->thre_pending = false; /* reading IIR acknowledges the THRE interrupt (datasheet table 4) */
      } else {
        data[0] = UART_IIR_NO_INT;
      }
      break;
    case UART_LCR: data[0] = s->lcr; break;
    case UART_MCR: data[0] = s->mcr; break;
    case UART_LSR: data[0] = UART_LSR_THRE | UART_LSR_TEMT; break;
    case UART_MSR:
      if (s->mcr & UART_MCR_LOOP) { /* loopback: modem outputs appear as inputs (Linux probes this) */
        data[0] = (uint8_t)(((s->mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) | ((s->mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
                            ((s->mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) | ((s->mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0));
      } else {
        data[0] = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
      }
      break;
    case UART_SCR: data[0] = s->scr; break;
    default: break;
  }
  pthread_mutex_unlock(&s->lock);
}

void serial_pio_write(void *ctx, uint64_t offset, const uint8_t *data, uint32_t len) {
  struct serial *s = ctx;
  pthread_mutex_lock(&s->lock);
  bool dlab = s->lcr & UART_LCR_DLAB;
  switch (offset) {
    case UART_RBR_THR:
      if (dlab) {
        s->dll = data[0];
      } else {
        if (!(s->mcr & UART_MCR_LOOP)) serial_emit(s, (char)data[0]);
        s->thre_pending = false;
        serial_update_irq(s);
      }
      break;
    case UART_IER:
      if (dlab) {
        s->dlm = data[0];
      } else {
        s->ier = data[0] & 0x0f;
        s->thre_pending = false;
        serial_update_irq(s);
      }
      break;
    case UART_IIR_FCR: break; /* FIFO control: no FIFO */
    case UART_LCR: s->lcr = data[0]; break;
    case UART_MCR: s->mcr = data[0] & 0x1f; break;
    case UART_SCR: s->scr = data[0]; break;
    default: break;
  }
  pthread_mutex_unlock(&s->lock);
}
