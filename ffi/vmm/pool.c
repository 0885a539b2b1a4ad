// `restore DIR` in a pooled vmm: only what depends on the snapshot (read, check, map, set state, start threads).
#include "pool.h"
#include <stdio.h>
#include <string.h>
#include "seccomp.h"

/* The snapshot read at start (pool_preread), until a `restore` of the same DIR takes it. */
static struct {
  bool ready;
  int rc;
  char dir[4096];
  char err[512];
  struct restore_plan plan;
} pre;

void pool_preread(const char *dir, const char *base) {
  struct restore_timings t = {0};
  if (strlen(dir) >= sizeof pre.dir) return; /* `restore DIR` then reports the open itself */
  strcpy(pre.dir, dir);
  pre.rc = snapshot_restore_read(dir, base, &pre.plan, &t, pre.err, sizeof pre.err);
  pre.ready = true;
}

int pool_restore(struct machine *m, const struct vmm_args *a, const char *dir, struct pool_result *res, char *err,
                 size_t errlen) {
  memset(res, 0, sizeof *res);
  uint64_t t0 = vm_now_ns();
  /* `stats start_us` of a pooled vmm counts from here, not from main(): the restore, not the pool's wait. */
  m->vm.start_ns = t0;
  struct restore_plan p;
  if (pre.ready && !strcmp(dir, pre.dir)) {
    pre.ready = false; /* taken: a retry after a refusal opens DIR by path */
    if (pre.rc < 0) {
      snprintf(err, errlen, "%s", pre.err);
      return -1;
    }
    p = pre.plan;
  } else if (snapshot_restore_read(dir, a->restore_base, &p, &res->t, err, errlen) < 0) {
    return -1;
  }
  if (snapshot_restore_check(m, &p, &res->t, err, errlen) < 0) {
    restore_plan_free(&p);
    return -1;
  }
  /* From here on the VM is changed: a failure ends this vmm rather than leave a half-restored machine pooled. */
  res->fatal = true;
  if (snapshot_restore_apply(m, &p, &res->t, err, errlen) < 0) return -1;
  uint64_t t1 = vm_now_ns();
  if (machine_start(m, err, errlen) < 0) return -1;
  uint64_t t2 = vm_now_ns();
  res->threads_ns = t2 - t1;
  res->total_ns = t2 - t0;
  /* Stacked on the pooled filter: no more KVM_SET_*, threads or filters from now on (docs/vmm.md "Seccomp"). */
  if (!a->no_seccomp && seccomp_install(SECCOMP_RUNNING, err, errlen) < 0) return -1;
  res->fatal = false;
  return 0;
}
