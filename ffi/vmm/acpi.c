// ACPI tables for a hardware-reduced platform (ACPI 6.5 spec): CPUs and IOAPIC in the MADT, virtio-mmio in the DSDT.
// Debian's cloud kernel has no MP-table parser (CONFIG_X86_MPPARSE off) and no virtio_mmio.device= support
// (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES off), so ACPI is the only way it learns about a second CPU and our devices.
#include "acpi.h"
#include <stdio.h>
#include <string.h>
#include "layout.h"

#define ACPI_HEADER_LEN 36
#define ACPI_OEM_ID "ONEBOX"
#define ACPI_OEM_TABLE_ID "ONEBOXVM"
#define ACPI_CREATOR_ID "OBOX"
#define RSDP_LEN 36
#define RSDP_V1_LEN 20
#define RSDP_REVISION 2
#define FADT_LEN 276
#define FADT_REVISION 6
#define FADT_MINOR_REVISION 5
/* FADT field offsets (ACPI 6.5, table 5.9). */
#define FADT_DSDT 40
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define FADT_HYPERVISOR_VENDOR 268
#define FADT_FLAG_PWR_BUTTON (1u << 4)  /* no fixed power button */
#define FADT_FLAG_SLP_BUTTON (1u << 5)
#define FADT_FLAG_HW_REDUCED_ACPI (1u << 20)
#define IAPC_BOOT_ARCH_VGA_NOT_PRESENT (1u << 2)
#define IAPC_BOOT_ARCH_MSI_NOT_SUPPORTED (1u << 3)
/* MADT (ACPI 6.5, 5.2.12). */
#define MADT_PCAT_COMPAT 1u
#define MADT_TYPE_LOCAL_APIC 0
#define MADT_TYPE_IO_APIC 1
#define MADT_LOCAL_APIC_ENABLED 1u
#define MADT_IOAPIC_ID 0  /* = nvcpus would also do; Linux renumbers if it clashes */
/* AML opcodes (ACPI 6.5, 20.2) and resource descriptors (6.4). */
#define AML_ZERO 0x00
#define AML_NAME 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_EXT_PREFIX 0x5b
#define AML_DEVICE 0x82
#define RES_MEMORY32_FIXED 0x86
#define RES_MEMORY32_FIXED_LEN 9
#define RES_MEM_READ_WRITE 1
#define RES_EXTENDED_IRQ 0x89
#define RES_EXTENDED_IRQ_LEN 6
#define RES_IRQ_CONSUMER 0x01
#define RES_IRQ_EDGE 0x02
#define RES_END_TAG 0x79
#define VIRTIO_MMIO_ACPI_HID "LNRO0005" /* drivers/virtio/virtio_mmio.c acpi_match_table */
#define RES_IO 0x47
#define RES_IO_LEN 7
#define RES_IO_DECODE16 1
#define EISAID_PNP0501 0x0105d041u /* "PNP0501", 16550A-compatible COM port, EISA-compressed (ACPI 6.5, 6.1.5) */
#define COM1_BASE 0x3f8
#define COM1_PORTS 8
#define COM1_GSI 4

struct buf {
  uint8_t data[4096];
  size_t len;
  bool overflow;
};

static void b_bytes(struct buf *b, const void *p, size_t n) {
  if (b->len + n > sizeof b->data) {
    b->overflow = true;
    return;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}
static void b_u8(struct buf *b, uint8_t v) { b_bytes(b, &v, 1); }
static void b_u16(struct buf *b, uint16_t v) { b_bytes(b, &v, 2); }
static void b_u32(struct buf *b, uint32_t v) { b_bytes(b, &v, 4); }

/* AML PkgLength (20.2.4): counts itself; 1 byte below 64, otherwise a lead byte with the number of following bytes. */
static void b_pkg(struct buf *b, const struct buf *body) {
  size_t n = body->len;
  if (n + 1 < 64) {
    b_u8(b, (uint8_t)(n + 1));
  } else if (n + 2 < (1u << 12)) {
    size_t t = n + 2;
    b_u8(b, (uint8_t)((1u << 6) | (t & 0xf)));
    b_u8(b, (uint8_t)(t >> 4));
  } else {
    size_t t = n + 3;
    b_u8(b, (uint8_t)((2u << 6) | (t & 0xf)));
    b_u8(b, (uint8_t)(t >> 4));
    b_u8(b, (uint8_t)(t >> 12));
  }
  b_bytes(b, body->data, body->len);
}

static uint8_t checksum(const uint8_t *p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += p[i];
  return (uint8_t)(0 - sum);
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev) {
  memset(t, 0, ACPI_HEADER_LEN);
  memcpy(t, sig, 4);
  memcpy(t + 4, &len, 4);
  t[8] = rev;
  memcpy(t + 10, ACPI_OEM_ID, 6);
  memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
  uint32_t one = 1;
  memcpy(t + 24, &one, 4);
  memcpy(t + 28, ACPI_CREATOR_ID, 4);
  memcpy(t + 32, &one, 4);
}

/* Copies a finished table (header filled by the caller) to gpa, sets its checksum, returns the next free GPA. */
static uint64_t place(struct vm *vm, uint64_t gpa, uint8_t *t, size_t len) {
  t[9] = 0;
  t[9] = checksum(t, len);
  uint8_t *dst = guest_mem_ptr(&vm->mem, gpa, len);
  if (!dst || gpa + len > LAYOUT_ACPI_END) return 0;
  memcpy(dst, t, len);
  return (gpa + len + 15) & ~15ULL;
}

/* Ends a device's resource template with Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) {gsi} and the end
 * tag, appends Name(_CRS, Buffer) with it to dev, and Device(dev) to scope. */
static void dsdt_add_device(struct buf *scope, struct buf *dev, struct buf *res, uint32_t gsi) {
  struct buf bufbody = {0};
  b_u8(res, RES_EXTENDED_IRQ);
  b_u16(res, RES_EXTENDED_IRQ_LEN);
  b_u8(res, RES_IRQ_CONSUMER | RES_IRQ_EDGE);
  b_u8(res, 1);
  b_u32(res, gsi);
  b_u8(res, RES_END_TAG);
  b_u8(res, 0); /* checksum 0: "treated as if the checksum operation succeeded" (6.4.2.9) */
  b_u8(&bufbody, AML_DWORD_PREFIX);
  b_u32(&bufbody, (uint32_t)res->len);
  b_bytes(&bufbody, res->data, res->len);
  b_u8(dev, AML_NAME);
  b_bytes(dev, "_CRS", 4);
  b_u8(dev, AML_BUFFER);
  b_pkg(dev, &bufbody);
  b_u8(scope, AML_EXT_PREFIX);
  b_u8(scope, AML_DEVICE);
  b_pkg(scope, dev);
}

/* Scope(\_SB) { Device(Vnnn) { Name(_HID, "LNRO0005"), Name(_UID, n), Name(_CRS, ResourceTemplate() {
 *   Memory32Fixed(ReadWrite, base, size), Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) {gsi} }) } } */
/* Device(COM1) { Name(_HID, EISAID("PNP0501")), Name(_UID, 0), Name(_CRS, ResourceTemplate() {
 *   IO(Decode16, 0x3f8, 0x3f8, 1, 8), Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) {4} }) }
 * A hardware-reduced ACPI platform has no legacy PIC, so Linux maps no ISA IRQs by default: without this
 * entry the 8250 driver cannot request IRQ 4, opening the console tty fails and PID 1 gets no stdout. */
static void dsdt_com1(struct buf *scope) {
  struct buf dev = {0}, res = {0};
  b_bytes(&dev, "COM1", 4);
  b_u8(&dev, AML_NAME);
  b_bytes(&dev, "_HID", 4);
  b_u8(&dev, AML_DWORD_PREFIX);
  b_u32(&dev, EISAID_PNP0501);
  b_u8(&dev, AML_NAME);
  b_bytes(&dev, "_UID", 4);
  b_u8(&dev, AML_ZERO);
  b_u8(&res, RES_IO);
  b_u8(&res, RES_IO_DECODE16);
  b_u16(&res, COM1_BASE);
  b_u16(&res, COM1_BASE);
  b_u8(&res, 1);
  b_u8(&res, COM1_PORTS);
  dsdt_add_device(scope, &dev, &res, COM1_GSI);
}

static void dsdt_body(struct buf *aml, const struct acpi_virtio_dev *devs, int ndevs) {
  struct buf scope = {0};
  b_bytes(&scope, "_SB_", 4);
  dsdt_com1(&scope);
  for (int i = 0; i < ndevs; i++) {
    struct buf dev = {0}, res = {0};
    char name[5];
    snprintf(name, sizeof name, "V%03d", i);
    b_bytes(&dev, name, 4);
    b_u8(&dev, AML_NAME);
    b_bytes(&dev, "_HID", 4);
    b_u8(&dev, AML_STRING_PREFIX);
    b_bytes(&dev, VIRTIO_MMIO_ACPI_HID, sizeof VIRTIO_MMIO_ACPI_HID); /* with its NUL */
    b_u8(&dev, AML_NAME);
    b_bytes(&dev, "_UID", 4);
    b_u8(&dev, AML_BYTE_PREFIX);
    b_u8(&dev, (uint8_t)i);
    b_u8(&res, RES_MEMORY32_FIXED);
    b_u16(&res, RES_MEMORY32_FIXED_LEN);
    b_u8(&res, RES_MEM_READ_WRITE);
    b_u32(&res, (uint32_t)devs[i].base);
    b_u32(&res, devs[i].size);
    dsdt_add_device(&scope, &dev, &res, devs[i].gsi);
  }
  b_u8(aml, AML_SCOPE);
  b_pkg(aml, &scope);
  if (scope.overflow) aml->overflow = true;
}

uint64_t acpi_write_tables(struct vm *vm, const struct acpi_virtio_dev *devs, int ndevs, char *err, size_t errlen) {
  if (ndevs > ACPI_MAX_VIRTIO) {
    snprintf(err, errlen, "too many virtio devices (%d, at most %d)", ndevs, ACPI_MAX_VIRTIO);
    return 0;
  }
  uint64_t rsdp_addr = LAYOUT_ACPI;
  uint64_t next = LAYOUT_ACPI + 64;

  struct buf dsdt = {0};
  dsdt.len = ACPI_HEADER_LEN;
  dsdt_body(&dsdt, devs, ndevs);
  if (dsdt.overflow) {
    snprintf(err, errlen, "DSDT too large");
    return 0;
  }
  header(dsdt.data, "DSDT", (uint32_t)dsdt.len, 2);
  uint64_t dsdt_addr = next;
  next = place(vm, next, dsdt.data, dsdt.len);

  uint8_t fadt[FADT_LEN] = {0};
  header(fadt, "FACP", FADT_LEN, FADT_REVISION);
  uint32_t dsdt32 = (uint32_t)dsdt_addr;
  memcpy(fadt + FADT_DSDT, &dsdt32, 4);
  memcpy(fadt + FADT_X_DSDT, &dsdt_addr, 8);
  uint16_t boot_arch = IAPC_BOOT_ARCH_VGA_NOT_PRESENT | IAPC_BOOT_ARCH_MSI_NOT_SUPPORTED;
  memcpy(fadt + FADT_IAPC_BOOT_ARCH, &boot_arch, 2);
  uint32_t flags = FADT_FLAG_HW_REDUCED_ACPI | FADT_FLAG_PWR_BUTTON | FADT_FLAG_SLP_BUTTON;
  memcpy(fadt + FADT_FLAGS, &flags, 4);
  fadt[FADT_MINOR_VERSION] = FADT_MINOR_REVISION;
  memcpy(fadt + FADT_HYPERVISOR_VENDOR, "ONEBOX\0\0", 8);
  uint64_t fadt_addr = next;
  next = next ? place(vm, next, fadt, FADT_LEN) : 0;

  struct buf madt = {0};
  madt.len = ACPI_HEADER_LEN;
  b_u32(&madt, (uint32_t)VM_LAPIC_ADDR);
  b_u32(&madt, MADT_PCAT_COMPAT);
  for (int i = 0; i < vm->nvcpus; i++) {
    b_u8(&madt, MADT_TYPE_LOCAL_APIC);
    b_u8(&madt, 8);
    b_u8(&madt, (uint8_t)i); /* ACPI processor UID */
    b_u8(&madt, (uint8_t)i); /* APIC id = vCPU index, as in CPUID (vcpu.c) */
    b_u32(&madt, MADT_LOCAL_APIC_ENABLED);
  }
  b_u8(&madt, MADT_TYPE_IO_APIC);
  b_u8(&madt, 12);
  b_u8(&madt, (uint8_t)(MADT_IOAPIC_ID + vm->nvcpus)); /* distinct from every LAPIC id */
  b_u8(&madt, 0);
  b_u32(&madt, (uint32_t)VM_IOAPIC_ADDR);
  b_u32(&madt, 0); /* GSI base: KVM's IOAPIC pins are GSIs 0..23 */
  header(madt.data, "APIC", (uint32_t)madt.len, 6);
  uint64_t madt_addr = next;
  next = next ? place(vm, next, madt.data, madt.len) : 0;

  uint8_t xsdt[ACPI_HEADER_LEN + 2 * 8];
  header(xsdt, "XSDT", sizeof xsdt, 1);
  memcpy(xsdt + ACPI_HEADER_LEN, &fadt_addr, 8);
  memcpy(xsdt + ACPI_HEADER_LEN + 8, &madt_addr, 8);
  uint64_t xsdt_addr = next;
  next = next ? place(vm, next, xsdt, sizeof xsdt) : 0;
  if (!next) {
    snprintf(err, errlen, "ACPI tables do not fit in guest memory");
    return 0;
  }

  uint8_t rsdp[RSDP_LEN] = {0};
  memcpy(rsdp, "RSD PTR ", 8);
  memcpy(rsdp + 9, ACPI_OEM_ID, 6);
  rsdp[15] = RSDP_REVISION;
  uint32_t rsdp_len = RSDP_LEN;
  memcpy(rsdp + 20, &rsdp_len, 4);
  memcpy(rsdp + 24, &xsdt_addr, 8);
  rsdp[8] = checksum(rsdp, RSDP_V1_LEN);
  rsdp[32] = checksum(rsdp, RSDP_LEN);
  uint8_t *dst = guest_mem_ptr(&vm->mem, rsdp_addr, RSDP_LEN);
  if (!dst) {
    snprintf(err, errlen, "guest memory too small for ACPI");
    return 0;
  }
  memcpy(dst, rsdp, RSDP_LEN);
  return rsdp_addr;
}
