// Port-I/O and MMIO dispatch: exits from vCPUs go to the device whose [base, base+size) holds the address.
#pragma once
#include <stdint.h>

/* offset is relative to the device's base; len is 1, 2, 4 or 8. Read handlers fill data[0..len). */
typedef void (*bus_read_fn)(void *ctx, uint64_t offset, uint8_t *data, uint32_t len);
typedef void (*bus_write_fn)(void *ctx, uint64_t offset, const uint8_t *data, uint32_t len);

struct bus_device {
  uint64_t base, size;
  bus_read_fn read;
  bus_write_fn write;
  void *ctx;
};

#define BUS_MAX_DEVICES 32
struct bus {
  struct bus_device devices[BUS_MAX_DEVICES];
  int count;
};

/* Returns 0, or -1 if full or overlapping. Registration happens before vCPUs start. */
int bus_register(struct bus *bus, struct bus_device dev);
/* Returns 0 if a device handled it, -1 if nothing is mapped there (reads then return all ones). */
int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len);
int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len);
