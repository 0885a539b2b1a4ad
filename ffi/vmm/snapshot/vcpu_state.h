// vCPU state save/restore: registers, FPU/XSAVE, MSRs, LAPIC, events, debug registers, as snapshot sections.
#pragma once
#include "snapshot/format.h"
#include "vm.h"

/* Appends vCPU c's state to w. The vCPU must be parked outside KVM_RUN. Returns 0 or -1 with err. */
int vcpu_state_save(struct vcpu *c, struct snap_writer *w, char *err, size_t errlen);
/* Sets vCPU c (created, CPUID set) from r in KVM's required order. Returns 0 or -1 with err. */
int vcpu_state_restore(struct vcpu *c, const struct snap_reader *r, char *err, size_t errlen);
