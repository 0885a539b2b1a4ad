// Privilege drop for onebox-vmm (docs/vmm.md "Isolation"): bounding set, groups, uid/gid, then verification.
#include "jail.h"
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* capget without libcap: the raw syscall with the 64-bit (v3) layout. */
static int jail_capget(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  return (int)syscall(SYS_capget, &hdr, data);
}

int jail_drop_privileges(uid_t uid, gid_t gid, char *err, size_t errlen) {
  if (uid == 0 || gid == 0) {
    snprintf(err, errlen, "--uid/--gid must not be 0");
    return -1;
  }
  /* The bounding set first (needs CAP_SETPCAP, lost with the uid switch): no later exec could gain a cap back.
   * EINVAL ends the loop at the kernel's last capability, whatever this header's CAP_LAST_CAP says. */
  for (int cap = 0; cap < 64; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break;
      snprintf(err, errlen, "PR_CAPBSET_DROP %d: %s", cap, strerror(errno));
      return -1;
    }
  }
  /* Ambient caps would survive the uid switch; clear them (EINVAL on kernels without ambient support is fine). */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
    snprintf(err, errlen, "PR_CAP_AMBIENT_CLEAR_ALL: %s", strerror(errno));
    return -1;
  }
  /* Groups, then gid, then uid: each later step needs the privilege the earlier ones still had. */
  if (setgroups(0, NULL) < 0) {
    snprintf(err, errlen, "setgroups: %s", strerror(errno));
    return -1;
  }
  if (setresgid(gid, gid, gid) < 0) {
    snprintf(err, errlen, "setresgid %u: %s", (unsigned)gid, strerror(errno));
    return -1;
  }
  if (setresuid(uid, uid, uid) < 0) {
    snprintf(err, errlen, "setresuid %u: %s", (unsigned)uid, strerror(errno));
    return -1;
  }
  /* Verify rather than trust: a kernel or LSM that kept any of this must stop the VM from starting. */
  if (setuid(0) == 0 || setgid(0) == 0) {
    snprintf(err, errlen, "privilege drop failed: root could be regained");
    return -1;
  }
  uid_t r, e, s;
  gid_t gr, ge, gs;
  if (getresuid(&r, &e, &s) < 0 || r != uid || e != uid || s != uid || getresgid(&gr, &ge, &gs) < 0 ||
      gr != gid || ge != gid || gs != gid || getgroups(0, NULL) != 0) {
    snprintf(err, errlen, "privilege drop failed: ids are not %u/%u", (unsigned)uid, (unsigned)gid);
    return -1;
  }
  struct __user_cap_data_struct caps[2];
  if (jail_capget(caps) < 0) {
    snprintf(err, errlen, "capget: %s", strerror(errno));
    return -1;
  }
  for (int i = 0; i < 2; i++) {
    if (caps[i].effective || caps[i].permitted || caps[i].inheritable) {
      snprintf(err, errlen, "privilege drop failed: capabilities remain");
      return -1;
    }
  }
  if (prctl(PR_CAPBSET_READ, 0 /* CAP_CHOWN */, 0, 0, 0) != 0) {
    snprintf(err, errlen, "privilege drop failed: bounding set not empty");
    return -1;
  }
  /* The uid switch made the process non-dumpable, which also makes its /proc/self files root's: a pooled vmm
   * opens /proc/self/pagemap after the drop (diff tracking at `restore`). No other process has this uid and
   * seccomp forbids ptrace, so dumpable only gives the process its own /proc files back; no core dumps. */
  struct rlimit no_core = {0, 0};
  if (setrlimit(RLIMIT_CORE, &no_core) < 0 || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) {
    snprintf(err, errlen, "RLIMIT_CORE/PR_SET_DUMPABLE: %s", strerror(errno));
    return -1;
  }
  return 0;
}
