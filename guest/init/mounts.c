// Filesystems of PID 1: the API mounts, the overlay root of two ext4 disks, the switch into it.
#include "mounts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define NEWROOT "/newroot"
#define LOWER "/run/onebox/lower"
#define LAYER "/run/onebox/layer"

struct api_mount {
  const char *src, *dst, *type, *data;
  unsigned long flags;
  mode_t mode;
  /* Tried when `data` is refused (EINVAL): an option an older kernel may not know. */
  const char *fallback_data;
};

static const struct api_mount API_MOUNTS[] = {
    {"proc", "/proc", "proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0555},
    {"sysfs", "/sys", "sysfs", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0555},
    {"devtmpfs", "/dev", "devtmpfs", "mode=0755", MS_NOSUID, 0755},
    {"devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=666", MS_NOSUID | MS_NOEXEC, 0755},
    {"tmpfs", "/dev/shm", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV, 01777},
    {"tmpfs", "/run", "tmpfs", "mode=0755", MS_NOSUID | MS_NODEV, 0755},
    {"tmpfs", "/tmp", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV, 01777},
    /* favordynmods (Linux 6.0+): the agent moves every command it starts into the user cgroup (Bun cannot clone
     * into it), and without it each move waits for an RCU grace period while holding up the command's forks and
     * exit; with it a move is cheap and fork/exit take a slightly slower lock path. */
    {"cgroup2", "/sys/fs/cgroup", "cgroup2", "nsdelegate,favordynmods", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0555, "nsdelegate"},
};
#define API_COUNT (sizeof API_MOUNTS / sizeof API_MOUNTS[0])

int mounts_api(void) {
  int failures = 0;
  for (size_t i = 0; i < API_COUNT; i++) {
    const struct api_mount *m = &API_MOUNTS[i];
    mkdir(m->dst, m->mode);
    int rc = mount(m->src, m->dst, m->type, m->flags, m->data);
    if (rc < 0 && errno == EINVAL && m->fallback_data) rc = mount(m->src, m->dst, m->type, m->flags, m->fallback_data);
    if (rc < 0 && errno != EBUSY) {
      log_errno("mount %s on %s", m->type, m->dst);
      failures++;
    }
  }
  if (symlink("/proc/self/fd", "/dev/fd") < 0 && errno != EEXIST) failures++;
  mkdir("/run/onebox", 0755);
  return failures;
}

int mounts_wait_dev(const char *dev, int ms) {
  struct stat st;
  for (int waited = 0;; waited += 5) {
    if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode)) return 0;
    if (waited >= ms) return -1;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

static int mkdir_p(const char *path, mode_t mode) {
  char buf[256];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

int mounts_overlay_root(const char *lower, const char *layer) {
  if (mkdir_p(LOWER, 0755) < 0 || mkdir_p(LAYER, 0755) < 0 || mkdir_p(NEWROOT, 0755) < 0) {
    log_errno("mkdir mount points");
    return -1;
  }
  if (mount(lower, LOWER, "ext4", MS_RDONLY | MS_NOATIME, "noload") < 0) {
    log_errno("mount %s (base, ext4 ro)", lower);
    return -1;
  }
  if (mount(layer, LAYER, "ext4", MS_NOATIME, NULL) < 0) {
    log_errno("mount %s (layer, ext4 rw)", layer);
    return -1;
  }
  if (mkdir_p(LAYER "/upper", 0755) < 0 || mkdir_p(LAYER "/work", 0755) < 0) {
    log_errno("create upper/ and work/ on the layer");
    return -1;
  }
  /* index=off, xino=off: the lower disk is a different image per template rebuild, and the
   * overlay must not refuse to mount when its upper was first made on another lower. */
  const char *opts = "lowerdir=" LOWER ",upperdir=" LAYER "/upper,workdir=" LAYER "/work,index=off,xino=off";
  if (mount("overlay", NEWROOT, "overlay", MS_NOATIME, opts) < 0) {
    log_errno("mount overlay");
    return -1;
  }
  /* Keep the two disks reachable under /run/onebox in the new root (run is moved below). */
  static const char *const moves[] = {"/dev", "/proc", "/sys", "/run", "/tmp"};
  for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++) {
    char dst[64];
    snprintf(dst, sizeof dst, NEWROOT "%s", moves[i]);
    mkdir(dst, 0755);
    if (mount(moves[i], dst, NULL, MS_MOVE, NULL) < 0) {
      log_errno("move %s into the new root", moves[i]);
      return -1;
    }
  }
  if (chdir(NEWROOT) < 0 || mount(NEWROOT, "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
    log_errno("switch root");
    return -1;
  }
  return 0;
}
