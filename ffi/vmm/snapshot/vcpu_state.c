// vCPU state: the KVM_GET_* / KVM_SET_* pairs, and the order KVM needs them restored in.
#include "snapshot/vcpu_state.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define SNAP_MAX_MSRS 1024

static int fail(char *err, size_t errlen, int vcpu, const char *what) {
  snprintf(err, errlen, "vcpu %d: %s: %s", vcpu, what, strerror(errno));
  return -1;
}

/* Every MSR KVM lists (msrs_to_save + emulated: TSC, kvm-clock, TSC_DEADLINE, SYSENTER/STAR/LSTAR, ...).
 * KVM_GET_MSRS stops at the first MSR it cannot read (one this CPU lacks): skip it and go on. */
static int msrs_save(struct vcpu *c, struct snap_writer *w, char *err, size_t errlen) {
  struct kvm_msr_list *list = calloc(1, sizeof *list + SNAP_MAX_MSRS * sizeof(uint32_t));
  struct kvm_msrs *msrs = calloc(1, sizeof *msrs + SNAP_MAX_MSRS * sizeof(struct kvm_msr_entry));
  struct kvm_msrs *one = calloc(1, sizeof *one + SNAP_MAX_MSRS * sizeof(struct kvm_msr_entry));
  int rc = -1;
  if (!list || !msrs || !one) goto out;
  list->nmsrs = SNAP_MAX_MSRS;
  if (ioctl(c->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
    fail(err, errlen, c->index, "KVM_GET_MSR_INDEX_LIST");
    goto out;
  }
  uint32_t n = 0;
  for (uint32_t i = 0; i < list->nmsrs;) {
    one->nmsrs = list->nmsrs - i;
    for (uint32_t k = 0; k < one->nmsrs; k++) one->entries[k] = (struct kvm_msr_entry){.index = list->indices[i + k]};
    int got = ioctl(c->fd, KVM_GET_MSRS, one);
    if (got < 0) {
      fail(err, errlen, c->index, "KVM_GET_MSRS");
      goto out;
    }
    for (int k = 0; k < got; k++) msrs->entries[n++] = one->entries[k];
    i += (uint32_t)got + 1; /* +1 skips the unreadable one */
  }
  msrs->nmsrs = n;
  snap_writer_add(w, SNAP_SEC_VCPU_MSRS, (uint16_t)c->index, msrs->entries, n * sizeof(struct kvm_msr_entry));
  rc = 0;
out:
  free(list);
  free(msrs);
  free(one);
  return rc;
}

int vcpu_state_save(struct vcpu *c, struct snap_writer *w, char *err, size_t errlen) {
  uint16_t i = (uint16_t)c->index;
  struct kvm_regs regs;
  struct kvm_sregs sregs;
  struct kvm_xsave xsave;
  struct kvm_xcrs xcrs;
  struct kvm_lapic_state lapic;
  struct kvm_mp_state mp;
  struct kvm_vcpu_events events;
  struct kvm_debugregs dregs;
  if (ioctl(c->fd, KVM_GET_REGS, &regs) < 0) return fail(err, errlen, c->index, "KVM_GET_REGS");
  if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0) return fail(err, errlen, c->index, "KVM_GET_SREGS");
  if (ioctl(c->fd, KVM_GET_XSAVE, &xsave) < 0) return fail(err, errlen, c->index, "KVM_GET_XSAVE");
  if (ioctl(c->fd, KVM_GET_XCRS, &xcrs) < 0) return fail(err, errlen, c->index, "KVM_GET_XCRS");
  if (ioctl(c->fd, KVM_GET_LAPIC, &lapic) < 0) return fail(err, errlen, c->index, "KVM_GET_LAPIC");
  if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0) return fail(err, errlen, c->index, "KVM_GET_MP_STATE");
  if (ioctl(c->fd, KVM_GET_VCPU_EVENTS, &events) < 0) return fail(err, errlen, c->index, "KVM_GET_VCPU_EVENTS");
  if (ioctl(c->fd, KVM_GET_DEBUGREGS, &dregs) < 0) return fail(err, errlen, c->index, "KVM_GET_DEBUGREGS");
  snap_writer_add(w, SNAP_SEC_VCPU_REGS, i, &regs, sizeof regs);
  snap_writer_add(w, SNAP_SEC_VCPU_SREGS, i, &sregs, sizeof sregs);
  snap_writer_add(w, SNAP_SEC_VCPU_XSAVE, i, &xsave, sizeof xsave);
  snap_writer_add(w, SNAP_SEC_VCPU_XCRS, i, &xcrs, sizeof xcrs);
  snap_writer_add(w, SNAP_SEC_VCPU_LAPIC, i, &lapic, sizeof lapic);
  snap_writer_add(w, SNAP_SEC_VCPU_MP_STATE, i, &mp, sizeof mp);
  snap_writer_add(w, SNAP_SEC_VCPU_EVENTS, i, &events, sizeof events);
  snap_writer_add(w, SNAP_SEC_VCPU_DEBUGREGS, i, &dregs, sizeof dregs);
  return msrs_save(c, w, err, errlen);
}

#define NEED(kind, type, var)                                                                 \
  const type *var = snap_reader_find(r, kind, (uint16_t)c->index, sizeof(type), NULL);        \
  if (!var) {                                                                                 \
    snprintf(err, errlen, "vcpu %d: snapshot lacks %s (or it has the wrong size)", c->index, #kind); \
    return -1;                                                                                \
  }

/* Order (KVM API docs / Firecracker): CPUID is set at creation; SREGS before REGS (mode decides how REGS
 * apply); LAPIC after SREGS (APIC base); MSRs after LAPIC (TSC_DEADLINE needs the timer mode);
 * MP_STATE and VCPU_EVENTS last (pending events refer to the restored state). */
int vcpu_state_restore(struct vcpu *c, const struct snap_reader *r, char *err, size_t errlen) {
  NEED(SNAP_SEC_VCPU_SREGS, struct kvm_sregs, sregs);
  NEED(SNAP_SEC_VCPU_REGS, struct kvm_regs, regs);
  NEED(SNAP_SEC_VCPU_XSAVE, struct kvm_xsave, xsave);
  NEED(SNAP_SEC_VCPU_XCRS, struct kvm_xcrs, xcrs);
  NEED(SNAP_SEC_VCPU_DEBUGREGS, struct kvm_debugregs, dregs);
  NEED(SNAP_SEC_VCPU_LAPIC, struct kvm_lapic_state, lapic);
  NEED(SNAP_SEC_VCPU_MP_STATE, struct kvm_mp_state, mp);
  NEED(SNAP_SEC_VCPU_EVENTS, struct kvm_vcpu_events, events);
  size_t msr_bytes = 0;
  const struct kvm_msr_entry *entries = snap_reader_find(r, SNAP_SEC_VCPU_MSRS, (uint16_t)c->index, 0, &msr_bytes);
  if (!entries || msr_bytes % sizeof *entries || msr_bytes / sizeof *entries > SNAP_MAX_MSRS) {
    snprintf(err, errlen, "vcpu %d: snapshot MSR section missing or malformed", c->index);
    return -1;
  }
  if (ioctl(c->fd, KVM_SET_SREGS, sregs) < 0) return fail(err, errlen, c->index, "KVM_SET_SREGS");
  if (ioctl(c->fd, KVM_SET_REGS, regs) < 0) return fail(err, errlen, c->index, "KVM_SET_REGS");
  if (ioctl(c->fd, KVM_SET_XSAVE, xsave) < 0) return fail(err, errlen, c->index, "KVM_SET_XSAVE");
  if (ioctl(c->fd, KVM_SET_XCRS, xcrs) < 0) return fail(err, errlen, c->index, "KVM_SET_XCRS");
  if (ioctl(c->fd, KVM_SET_DEBUGREGS, dregs) < 0) return fail(err, errlen, c->index, "KVM_SET_DEBUGREGS");
  if (ioctl(c->fd, KVM_SET_LAPIC, lapic) < 0) return fail(err, errlen, c->index, "KVM_SET_LAPIC");

  uint32_t n = (uint32_t)(msr_bytes / sizeof *entries);
  struct kvm_msrs *msrs = calloc(1, sizeof *msrs + (n ? n : 1) * sizeof *entries);
  if (!msrs) return fail(err, errlen, c->index, "calloc msrs");
  msrs->nmsrs = n;
  memcpy(msrs->entries, entries, msr_bytes);
  int set = ioctl(c->fd, KVM_SET_MSRS, msrs);
  uint32_t bad = set >= 0 && (uint32_t)set < n ? msrs->entries[set].index : 0;
  free(msrs);
  if (set < 0) return fail(err, errlen, c->index, "KVM_SET_MSRS");
  if ((uint32_t)set != n) {
    snprintf(err, errlen, "vcpu %d: KVM_SET_MSRS refused MSR %#x (%d of %u set)", c->index, bad, set, n);
    return -1;
  }
  if (ioctl(c->fd, KVM_SET_MP_STATE, mp) < 0) return fail(err, errlen, c->index, "KVM_SET_MP_STATE");
  if (ioctl(c->fd, KVM_SET_VCPU_EVENTS, events) < 0) return fail(err, errlen, c->index, "KVM_SET_VCPU_EVENTS");
  return 0;
}
