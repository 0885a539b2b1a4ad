// The vmm's seccomp-bpf allowlists, installed on every thread once setup is done (docs/vmm.md lists them).
#pragma once
#include <stddef.h>

enum seccomp_stage {
  SECCOMP_RUNNING, /* a VM that runs: KVM_RUN and KVM_GET_*, no threads, no KVM_SET_* */
  SECCOMP_POOLED,  /* a pooled vmm waiting for `restore DIR`: also the restore's KVM_SET_*, threads, seccomp */
};

/* Sets PR_SET_NO_NEW_PRIVS and installs the filter on all threads (TSYNC); a second call stacks on the first, so a
 * pooled vmm ends with the intersection, i.e. the running filter. Returns 0 or -1 with err. */
int seccomp_install(enum seccomp_stage stage, char *err, size_t errlen);
