// Snapshot a paused machine to DIR (state + memory) and build a machine from one (docs/snapshot.md).
#pragma once
#include "machine.h"

/* Writes DIR/state and DIR/memory. The vCPUs must be paused. Returns 0 or -1 with err. */
int snapshot_save(struct machine *m, const char *dir, char *err, size_t errlen);
/* The same, but DIR/memory holds only the pages changed since the VM's restore (a diff over the snapshot it was
 * restored from, or that snapshot's base: diffs are flattened). A full snapshot if the changes are too scattered.
 * Refused for a VM that was cold-booted. */
int snapshot_save_diff(struct machine *m, const char *dir, char *err, size_t errlen);
/* Builds m from a->restore instead of booting: memory mapped MAP_PRIVATE from DIR/memory. Returns 0 or -1. */
int snapshot_restore(struct machine *m, const struct vmm_args *a, int console_fd, char *err, size_t errlen);
