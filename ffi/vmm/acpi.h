// ACPI tables (RSDP, XSDT, FADT, MADT, DSDT): how Linux finds the vCPUs, the IOAPIC and the virtio-mmio devices.
#pragma once
#include "vm.h"

#define ACPI_MAX_VIRTIO 16

struct acpi_virtio_dev {
  uint64_t base;
  uint32_t size;
  uint32_t gsi;
};

/* Writes the tables into [LAYOUT_ACPI, LAYOUT_ACPI_END). Returns the RSDP address, or 0 with err set. */
uint64_t acpi_write_tables(struct vm *vm, const struct acpi_virtio_dev *devs, int ndevs, char *err, size_t errlen);
