// The snapshot state file DIR/state (docs/snapshot.md): header, typed sections, CRC32C, hard caps on every length read.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "OBXSNAP\0"
#define SNAP_VERSION 1      /* a full snapshot */
#define SNAP_VERSION_DIFF 2 /* a diff snapshot (snapshot/diff.h): needs its base; older vmms refuse it by version */
#define SNAP_MAX_FILE (4u << 20)    /* a state file is a few hundred KiB at most */
#define SNAP_MAX_SECTION (1u << 20)
#define SNAP_MAX_SECTIONS 256

enum snap_host_kind { SNAP_HOST_HARDWARE = 1, SNAP_HOST_PVM = 2 };

/* Section kinds; `index` tells vCPUs (and devices) apart. */
enum snap_section_kind {
  SNAP_SEC_VCPU_REGS = 1, SNAP_SEC_VCPU_SREGS, SNAP_SEC_VCPU_XSAVE, SNAP_SEC_VCPU_XCRS, SNAP_SEC_VCPU_MSRS,
  SNAP_SEC_VCPU_LAPIC, SNAP_SEC_VCPU_MP_STATE, SNAP_SEC_VCPU_EVENTS, SNAP_SEC_VCPU_DEBUGREGS,
  SNAP_SEC_VM_IRQCHIP = 32, SNAP_SEC_VM_PIT2, SNAP_SEC_VM_CLOCK,
  SNAP_SEC_SERIAL = 64, SNAP_SEC_I8042, SNAP_SEC_CMOS,
  SNAP_SEC_MACHINE = 96, SNAP_SEC_VIRTIO, /* every virtio device's transport (virtio/persist.h), index = bus slot */
  /* A virtio device's own state (virtio_device_ops.state_section, index = ordinal among its kind): 98 and up, one
   * kind per device type; a new device appends its kind here, none is ever renumbered (snapshots on disk). */
  SNAP_SEC_VSOCK = 98,
  SNAP_SEC_NET = 99,
  SNAP_SEC_DIFF_BASE = 128, SNAP_SEC_DIFF_RUNS, /* diff snapshots only (snapshot/diff.h) */
};

struct snap_header {
  char magic[8];
  uint32_t version;
  uint32_t host_kind;
  uint32_t nvcpus;
  uint32_t nsections;
  uint64_t mem_bytes;
  uint32_t crc32c;    /* over the whole file with this field zero */
  uint32_t reserved;
};

/* What the machine was built with, checked against the restoring command line. */
struct snap_machine_state { uint32_t nvirtio, reserved; };

struct snap_section_hdr {
  uint16_t kind;
  uint16_t index;
  uint32_t len;
};

/* Writer: an in-memory buffer, written out once by the caller. */
struct snap_writer {
  uint8_t *buf;
  size_t len, cap;
  uint32_t nsections;
  bool failed;
};

/* Reader: a validated file image; sections are found by kind and index. */
struct snap_reader {
  uint8_t *buf;
  size_t len;
  struct snap_header hdr;
};

uint32_t snap_crc32c(uint32_t crc, const void *data, size_t len);
/* This host's kind: PVM if the kvm_pvm module is loaded, else hardware KVM. */
enum snap_host_kind snap_host_kind(void);
const char *snap_host_kind_name(uint32_t kind);

void snap_writer_init(struct snap_writer *w, uint32_t nvcpus, uint64_t mem_bytes, uint32_t host_kind);
void snap_writer_add(struct snap_writer *w, uint16_t kind, uint16_t index, const void *data, size_t len);
/* Marks the image a diff snapshot (version SNAP_VERSION_DIFF). */
void snap_writer_mark_diff(struct snap_writer *w);
/* Seals the header (section count, checksum). Returns the image or NULL if any add failed. */
const uint8_t *snap_writer_finish(struct snap_writer *w, size_t *len);
void snap_writer_free(struct snap_writer *w);

/* Takes ownership of buf (malloc'd). Checks magic, version (full or diff: r->hdr.version tells which), host kind, caps and checksum. Returns 0 or -1 with err. */
int snap_reader_open(struct snap_reader *r, uint8_t *buf, size_t len, uint32_t expect_host_kind, char *err, size_t errlen);
/* The section's payload, or NULL. If want_len is nonzero the length must match exactly. */
const void *snap_reader_find(const struct snap_reader *r, uint16_t kind, uint16_t index, size_t want_len, size_t *len);
void snap_reader_free(struct snap_reader *r);
