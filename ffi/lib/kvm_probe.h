// libonebox: layout of the KVM probe's result array (mirrored in src/sys/kvm-probe.ts).
#pragma once
#include <stdint.h>

#define ONEBOX_ABI_VERSION 2

/* Slots of the int32 array onebox_kvm_probe fills; -1 = not reached. Errno values are positive,
 * ioctl results that failed are stored as -errno. */
enum probe_slot {
  PROBE_OPEN_ERRNO = 0,        /* 0 if the device opened, else errno */
  PROBE_API_VERSION = 1,       /* KVM_GET_API_VERSION (12) */
  PROBE_CREATE_VM_ERRNO = 2,   /* 0 if KVM_CREATE_VM worked, else errno */
  PROBE_CREATE_VCPU_ERRNO = 3, /* 0 if KVM_CREATE_VCPU worked, else errno */
  PROBE_VCPU_MMAP_SIZE = 4,    /* KVM_GET_VCPU_MMAP_SIZE */
  PROBE_CAP_FIRST = 5,         /* KVM_CHECK_EXTENSION results, PROBE_NCAPS of them */
  PROBE_NCAPS = 8,
  PROBE_NSLOTS = PROBE_CAP_FIRST + PROBE_NCAPS,
};

int onebox_abi_version(void);
/* onebox_kvm_probe fills out[0..n) (n >= PROBE_NSLOTS); returns 0, or -EINVAL if n is too small. */
int onebox_kvm_probe(const char *dev_path, int32_t *out, int n);
