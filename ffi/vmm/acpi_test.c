// Native unit test of the ACPI tables: signatures, checksums, table links, MADT entries, DSDT devices and lengths.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "acpi.h"
#include "layout.h"
#include "test_check.h"

static uint8_t sum(const uint8_t *p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; i++) s += p[i];
  return s;
}
static uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static size_t count(const uint8_t *hay, size_t n, const void *needle, size_t m) {
  size_t c = 0;
  for (size_t i = 0; i + m <= n; i++) c += memcmp(hay + i, needle, m) == 0;
  return c;
}

int main(void) {
  struct vm vm = {0};
  vm.mem.size = 2 << 20;
  vm.mem.host = calloc(1, vm.mem.size);
  vm.nvcpus = 2;
  struct acpi_virtio_dev devs[3] = {{0xd0000000, 0x1000, 5}, {0xd0001000, 0x1000, 6}, {0xd0002000, 0x1000, 7}};
  char err[128];
  uint64_t rsdp = acpi_write_tables(&vm, devs, 3, err, sizeof err);
  CHECK(rsdp == LAYOUT_ACPI);
  const uint8_t *m = vm.mem.host, *r = m + rsdp;
  CHECK(memcmp(r, "RSD PTR ", 8) == 0 && sum(r, 20) == 0 && sum(r, 36) == 0 && r[15] == 2);
  const uint8_t *xsdt = m + u64(r + 24);
  CHECK(memcmp(xsdt, "XSDT", 4) == 0 && sum(xsdt, u32(xsdt + 4)) == 0 && u32(xsdt + 4) == 36 + 16);
  const uint8_t *fadt = m + u64(xsdt + 36), *madt = m + u64(xsdt + 44);
  CHECK(memcmp(fadt, "FACP", 4) == 0 && sum(fadt, u32(fadt + 4)) == 0 && u32(fadt + 4) == 276);
  CHECK(u32(fadt + 112) & (1u << 20)); /* HW_REDUCED_ACPI */
  const uint8_t *dsdt = m + u64(fadt + 140);
  CHECK(u32(fadt + 40) == u64(fadt + 140));
  CHECK(memcmp(dsdt, "DSDT", 4) == 0 && sum(dsdt, u32(dsdt + 4)) == 0);
  size_t dlen = u32(dsdt + 4);
  CHECK(count(dsdt, dlen, "LNRO0005", 9) == 3);
  uint8_t pnp0501[4] = {0x41, 0xd0, 0x05, 0x01};
  CHECK(count(dsdt, dlen, pnp0501, 4) == 1);
  /* The Scope's PkgLength must cover exactly the rest of the table (2-byte encoding here). */
  CHECK(dsdt[36] == 0x10);
  size_t pkg = (dsdt[37] >> 6) == 1 ? (size_t)((dsdt[37] & 0xf) | (dsdt[38] << 4)) : dsdt[37];
  CHECK(37 + pkg == dlen);
  CHECK(memcmp(madt, "APIC", 4) == 0 && sum(madt, u32(madt + 4)) == 0);
  CHECK(u32(madt + 36) == VM_LAPIC_ADDR);
  int lapics = 0, ioapics = 0;
  for (size_t off = 44; off < u32(madt + 4); off += madt[off + 1]) {
    CHECK(madt[off + 1] >= 2);
    if (madt[off] == 0) CHECK(madt[off + 3] == lapics++ && (u32(madt + off + 4) & 1));
    if (madt[off] == 1) {
      ioapics++;
      CHECK(u32(madt + off + 4) == VM_IOAPIC_ADDR);
    }
  }
  CHECK(lapics == 2 && ioapics == 1);
  CHECK(acpi_write_tables(&vm, devs, ACPI_MAX_VIRTIO + 1, err, sizeof err) == 0); /* refuses too many */
  free(vm.mem.host);
  printf("acpi_test: ok\n");
  return 0;
}
