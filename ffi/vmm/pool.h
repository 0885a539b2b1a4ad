// A pooled vmm (--pool, docs/snapshot.md "Pooled restore"): the machine is prepared ahead, `restore DIR` fills it.
#pragma once
#include <stdbool.h>
#include "args.h"
#include "machine.h"
#include "snapshot/snapshot.h"

struct pool_result {
  struct restore_timings t;
  uint64_t threads_ns; /* event loop + vCPU threads started */
  uint64_t total_ns;   /* request received to vCPUs started */
  bool fatal;          /* the machine was changed before the failure: the vmm must end */
};

/* --pool --restore DIR: reads DIR/state and opens DIR/memory now (main, as root, before the privilege drop), so
 * that `restore DIR` needs no path the vmm's uid could open: a snapshot's files are private to root. A failure is
 * kept and reported by `restore DIR` (the vmm stays pooled, as for any refusal). */
void pool_preread(const char *dir, const char *base);

/* Loads the snapshot in dir into the prepared machine m and starts it, then narrows seccomp to the running filter.
 * Returns 0, or -1 with err; res->fatal tells whether the vmm is still pooled (a refusal changes nothing). */
int pool_restore(struct machine *m, const struct vmm_args *a, const char *dir, struct pool_result *res, char *err,
                 size_t errlen);
