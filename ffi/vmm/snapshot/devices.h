// Core device state (8250 COM1, i8042, CMOS) as plain structs: save() -> state, restore(state).
#pragma once
#include <stdint.h>
#include "legacy.h"
#include "serial.h"

struct serial_state { uint8_t ier, lcr, mcr, scr, dll, dlm, thre_pending, reserved; };
struct i8042_state { uint8_t ctr, out, out_full, pending_cmd; };
struct cmos_state { uint8_t index, reserved[7]; uint8_t ram[128]; };

void serial_save(struct serial *s, struct serial_state *out);
void serial_restore(struct serial *s, const struct serial_state *st);
void i8042_save(const struct i8042 *k, struct i8042_state *out);
void i8042_restore(struct i8042 *k, const struct i8042_state *st);
void cmos_save(const struct cmos *c, struct cmos_state *out);
void cmos_restore(struct cmos *c, const struct cmos_state *st);
