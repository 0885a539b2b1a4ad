// vCPUs: creation (CPUID, local APIC wiring), one run-loop pthread each, and pause/resume/kick.
#pragma once
#include "vm.h"

/* Creates vm->nvcpus vCPUs with per-vCPU CPUID and LINT0=ExtINT / LINT1=NMI. Returns 0 or -1 with err. */
int vcpus_create(struct vm *vm, char *err, size_t errlen);
/* Starts one thread per vCPU. Registers must already be set. */
int vcpus_start(struct vm *vm, char *err, size_t errlen);
/* Parks every vCPU thread outside KVM_RUN; returns 0 when all are parked, -1 on timeout. */
int vcpus_pause(struct vm *vm);
void vcpus_resume(struct vm *vm);
bool vcpus_paused(struct vm *vm);
