// Legacy device save/restore (COM1, i8042, CMOS): register files only (console output buffers are the host's, not
// the guest's, state). The structs are in serial.h and legacy.h; snapshot/ writes and reads them as sections.
#include <string.h>
#include "legacy.h"
#include "serial.h"

void serial_save(struct serial *s, struct serial_state *out) {
  pthread_mutex_lock(&s->lock);
  *out = (struct serial_state){.ier = s->ier, .lcr = s->lcr, .mcr = s->mcr, .scr = s->scr, .dll = s->dll,
                               .dlm = s->dlm, .thre_pending = s->thre_pending};
  pthread_mutex_unlock(&s->lock);
}

void serial_restore(struct serial *s, const struct serial_state *st) {
  pthread_mutex_lock(&s->lock);
  s->ier = st->ier;
  s->lcr = st->lcr;
  s->mcr = st->mcr;
  s->scr = st->scr;
  s->dll = st->dll;
  s->dlm = st->dlm;
  s->thre_pending = st->thre_pending != 0;
  pthread_mutex_unlock(&s->lock);
}

void i8042_save(const struct i8042 *k, struct i8042_state *out) {
  *out = (struct i8042_state){.ctr = k->ctr, .out = k->out, .out_full = k->out_full, .pending_cmd = k->pending_cmd};
}

void i8042_restore(struct i8042 *k, const struct i8042_state *st) {
  k->ctr = st->ctr;
  k->out = st->out;
  k->out_full = st->out_full != 0;
  k->pending_cmd = st->pending_cmd;
}

void cmos_save(const struct cmos *c, struct cmos_state *out) {
  memset(out, 0, sizeof *out);
  out->index = c->index;
  memcpy(out->ram, c->ram, sizeof out->ram);
}

void cmos_restore(struct cmos *c, const struct cmos_state *st) {
  c->index = st->index & 0x7f; /* the index port addresses 128 bytes */
  memcpy(c->ram, st->ram, sizeof c->ram);
}
