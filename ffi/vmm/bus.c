// Port-I/O and MMIO dispatch: finds the device whose [base, base+size) holds an address and calls it.
#include "bus.h"
#include <string.h>

/* True if [a, a+alen) and [b, b+blen) intersect (sizes are non-zero, no wrap: checked at registration). */
static int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

int bus_register(struct bus *bus, struct bus_device dev) {
  if (bus->count >= BUS_MAX_DEVICES || dev.size == 0 || dev.base + dev.size < dev.base) return -1;
  for (int i = 0; i < bus->count; i++)
    if (ranges_overlap(dev.base, dev.size, bus->devices[i].base, bus->devices[i].size)) return -1;
  bus->devices[bus->count++] = dev;
  return 0;
}

/* The device that holds the whole access [addr, addr+len), or NULL. An access that straddles the end of a
 * device is treated as unmapped: a guest must not reach past a window by widening the access. */
static const struct bus_device *bus_find(const struct bus *bus, uint64_t addr, uint32_t len) {
  for (int i = 0; i < bus->count; i++) {
    const struct bus_device *d = &bus->devices[i];
    if (addr >= d->base && addr - d->base < d->size && len <= d->size - (addr - d->base)) return d;
  }
  return NULL;
}

int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len) {
  const struct bus_device *d = bus_find(bus, addr, len);
  if (!d || !d->read) {
    memset(data, 0xff, len);
    return d ? 0 : -1;
  }
  d->read(d->ctx, addr - d->base, data, len);
  return 0;
}

int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len) {
  const struct bus_device *d = bus_find(bus, addr, len);
  if (!d) return -1;
  if (d->write) d->write(d->ctx, addr - d->base, data, len);
  return 0;
}
