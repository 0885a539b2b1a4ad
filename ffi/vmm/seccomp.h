// The vmm's seccomp-bpf allowlist, installed on every thread once setup is done (docs/vmm.md lists it).
#pragma once
#include <stddef.h>

/* Sets PR_SET_NO_NEW_PRIVS and installs the filter on all threads (TSYNC). Returns 0 or -1 with err. */
int seccomp_install(char *err, size_t errlen);
