// Legacy PC ports: a minimal i8042 whose reset pulse reboots, a CMOS RTC with the host's time, the power-off port.
#include "legacy.h"
#include <string.h>
#include <time.h>

/* i8042 commands and status bits (IBM PC/AT technical reference; Linux drivers/input/serio/i8042.h). */
#define I8042_CMD_READ_CTR 0x20
#define I8042_CMD_WRITE_CTR 0x60
#define I8042_CMD_SELF_TEST 0xaa
#define I8042_CMD_KBD_TEST 0xab
#define I8042_CMD_READ_OUTPUT 0xd0
#define I8042_CMD_WRITE_OUTPUT 0xd1
#define I8042_CMD_RESET_PULSE 0xfe /* pulse output line 0 = CPU reset: Linux reboot=k */
#define I8042_SELF_TEST_OK 0x55
#define I8042_STR_OBF 0x01
#define I8042_STR_SYSFLAG 0x04
#define I8042_CTR_SYSFLAG 0x04
/* MC146818 RTC registers (datasheet, "Address map"). */
#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32
#define RTC_REG_A_DIVIDER 0x26 /* 32.768 kHz time base, 1024 Hz; UIP (bit 7) never set */
#define RTC_REG_B_24H 0x02     /* 24-hour, BCD */
#define RTC_REG_D_VRT 0x80     /* valid RAM and time */
#define CMOS_NMI_DISABLE 0x80

static void i8042_read(void *ctx, uint64_t offset, uint8_t *data, uint32_t len) {
  struct i8042 *k = ctx;
  memset(data, 0, len);
  if (offset == I8042_COMMAND_PORT - I8042_DATA_PORT) {
    data[0] = I8042_STR_SYSFLAG | (k->out_full ? I8042_STR_OBF : 0);
  } else if (offset == 0) {
    data[0] = k->out;
    k->out_full = false;
  }
}

static void i8042_output(struct i8042 *k, uint8_t v) {
  k->out = v;
  k->out_full = true;
}

static void i8042_write(void *ctx, uint64_t offset, const uint8_t *data, uint32_t len) {
  struct i8042 *k = ctx;
  uint8_t v = data[0];
  if (offset == 0) { /* data port: the argument of a pending command; keyboard commands are ignored */
    if (k->pending_cmd == I8042_CMD_WRITE_CTR) k->ctr = v;
    k->pending_cmd = 0;
    return;
  }
  if (offset != I8042_COMMAND_PORT - I8042_DATA_PORT) return;
  switch (v) {
    case I8042_CMD_READ_CTR: i8042_output(k, k->ctr); break;
    case I8042_CMD_WRITE_CTR:
    case I8042_CMD_WRITE_OUTPUT: k->pending_cmd = v; break;
    case I8042_CMD_SELF_TEST: i8042_output(k, I8042_SELF_TEST_OK); break;
    case I8042_CMD_KBD_TEST: i8042_output(k, 0); break;
    case I8042_CMD_READ_OUTPUT: i8042_output(k, 0x01); break; /* bit 0: system reset line not asserted */
    case I8042_CMD_RESET_PULSE:
      /* With panic=-1 a panic ends in this same reset: report what the console said. */
      atomic_store(&k->vm->reset_requested, true);
      if (atomic_load(&k->vm->panic_seen))
        vm_request_exit(k->vm, VM_EXIT_PANIC, "kernel panic (reset after panic)");
      else
        vm_request_exit(k->vm, VM_EXIT_REBOOT, "i8042 reset");
      break;
    default: break;
  }
}

static uint8_t bcd(int v) { return (uint8_t)(((v / 10) << 4) | (v % 10)); }

/* UTC calendar fields from the Unix time, by hand: glibc's gmtime_r reads /etc/localtime on first use, which
 * the seccomp filter forbids (days -> civil date after H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"). */
static void utc_fields(time_t t, struct tm *tm) {
  long long days = t / 86400, secs = t % 86400;
  tm->tm_hour = (int)(secs / 3600);
  tm->tm_min = (int)(secs % 3600 / 60);
  tm->tm_sec = (int)(secs % 60);
  tm->tm_wday = (int)((days + 4) % 7); /* 1970-01-01 was a Thursday */
  long long z = days + 719468, era = z / 146097, doe = z - era * 146097;
  long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  tm->tm_year = (int)(yoe + era * 400 + (m <= 2) - 1900);
  tm->tm_mon = (int)(m - 1);
  tm->tm_mday = (int)d;
}

static void cmos_read(void *ctx, uint64_t offset, uint8_t *data, uint32_t len) {
  struct cmos *c = ctx;
  memset(data, 0, len);
  if (offset != 1) {
    data[0] = c->index;
    return;
  }
  struct tm tm;
  utc_fields(time(NULL), &tm); /* the guest's RTC runs in UTC */
  switch (c->index) {
    case RTC_SECONDS: data[0] = bcd(tm.tm_sec); break;
    case RTC_MINUTES: data[0] = bcd(tm.tm_min); break;
    case RTC_HOURS: data[0] = bcd(tm.tm_hour); break;
    case RTC_DAY_OF_WEEK: data[0] = bcd(tm.tm_wday + 1); break;
    case RTC_DAY_OF_MONTH: data[0] = bcd(tm.tm_mday); break;
    case RTC_MONTH: data[0] = bcd(tm.tm_mon + 1); break;
    case RTC_YEAR: data[0] = bcd(tm.tm_year % 100); break;
    case RTC_CENTURY: data[0] = bcd((tm.tm_year + 1900) / 100); break;
    case RTC_REG_A: data[0] = RTC_REG_A_DIVIDER; break;
    case RTC_REG_B: data[0] = RTC_REG_B_24H; break;
    case RTC_REG_C: data[0] = 0; break;
    case RTC_REG_D: data[0] = RTC_REG_D_VRT; break;
    default: data[0] = c->ram[c->index & 0x7f]; break;
  }
}

static void cmos_write(void *ctx, uint64_t offset, const uint8_t *data, uint32_t len) {
  struct cmos *c = ctx;
  if (offset == 0)
    c->index = data[0] & (uint8_t)~CMOS_NMI_DISABLE;
  else if (c->index > RTC_REG_D) /* the clock itself is read-only: the guest's time comes from the host */
    c->ram[c->index & 0x7f] = data[0];
}

static void poweroff_write(void *ctx, uint64_t offset, const uint8_t *data, uint32_t len) {
  if (data[0] == ONEBOX_POWEROFF_VALUE) vm_request_exit(ctx, VM_EXIT_POWEROFF, "guest power-off");
}

int legacy_register(struct vm *vm, struct i8042 *kbd, struct cmos *cmos) {
  memset(kbd, 0, sizeof *kbd);
  memset(cmos, 0, sizeof *cmos);
  kbd->vm = vm;
  kbd->ctr = I8042_CTR_SYSFLAG;
  /* One window 0x60..0x64; 0x61 (PIT speaker) is claimed by the in-kernel PIT and never exits to us. */
  if (bus_register(&vm->pio, (struct bus_device){.base = I8042_DATA_PORT,
                                                 .size = I8042_COMMAND_PORT - I8042_DATA_PORT + 1,
                                                 .read = i8042_read, .write = i8042_write, .ctx = kbd}) < 0)
    return -1;
  if (bus_register(&vm->pio, (struct bus_device){.base = CMOS_INDEX_PORT, .size = CMOS_PORTS,
                                                 .read = cmos_read, .write = cmos_write, .ctx = cmos}) < 0)
    return -1;
  return bus_register(&vm->pio, (struct bus_device){.base = ONEBOX_PORT_POWEROFF, .size = 1,
                                                    .write = poweroff_write, .ctx = vm});
}
