// Legacy PC ports the guest touches: i8042 (reset pulse), CMOS RTC, and the onebox power-off port.
#pragma once
#include "vm.h"

#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64
#define CMOS_INDEX_PORT 0x70
#define CMOS_PORTS 2
/* guest/protocol.ts: ONEBOX_PORT_POWEROFF, ONEBOX_POWEROFF_VALUE (checked by guest/protocol.test.ts). */
#define ONEBOX_PORT_POWEROFF 0x0501
#define ONEBOX_POWEROFF_VALUE 0x31

struct i8042 {
  struct vm *vm;
  uint8_t ctr;          /* controller configuration byte */
  uint8_t out;          /* one-byte output buffer */
  bool out_full;
  uint8_t pending_cmd;  /* a command waiting for its data byte on port 0x60 */
};

struct cmos {
  uint8_t index;
  uint8_t ram[128];
};

/* Registers i8042, CMOS and the power-off port on vm->pio. Returns 0 or -1. */
int legacy_register(struct vm *vm, struct i8042 *kbd, struct cmos *cmos);

/* Snapshot state as plain structs (legacy_persist.c): save() -> state, restore(state). */
struct i8042_state { uint8_t ctr, out, out_full, pending_cmd; };
struct cmos_state { uint8_t index, reserved[7]; uint8_t ram[128]; };
void i8042_save(const struct i8042 *k, struct i8042_state *out);
void i8042_restore(struct i8042 *k, const struct i8042_state *st);
void cmos_save(const struct cmos *c, struct cmos_state *out);
void cmos_restore(struct cmos *c, const struct cmos_state *st);
