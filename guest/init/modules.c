// Loads the kernel modules shipped in the initramfs, in the order mkinitramfs.sh wrote.
#include "modules.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmdline.h"
#include "file-io.h"
#include "log.h"

#define LIST_MAX 4096

/* module name of "path/virtio-rng.ko" = "virtio_rng" */
static int module_name(const char *file, char *out, size_t cap) {
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  size_t n = strlen(base);
  if (n > 3 && !strcmp(base + n - 3, ".ko")) n -= 3;
  if (n == 0 || n >= cap) return -1;
  for (size_t i = 0; i < n; i++) out[i] = base[i] == '-' ? '_' : base[i];
  out[n] = '\0';
  return 0;
}

static int load_one(const char *file, const char *cmdline, unsigned long cmdline_len) {
  char name[64], params[1024], path[256];
  if (module_name(file, name, sizeof name) < 0 || strchr(file, '/') ||
      snprintf(path, sizeof path, "%s/%s", MODULES_DIR, file) >= (int)sizeof path) {
    log_info("modules: bad entry '%s'", file);
    return -1;
  }
  int np = cmdline_module_params(cmdline, cmdline_len, name, params, sizeof params);
  if (np < 0) {
    log_info("modules: parameters for %s malformed or too long; loading without them", name);
    params[0] = '\0';
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    log_errno("modules: open %s", path);
    return -1;
  }
  long r = syscall(SYS_finit_module, fd, params, 0);
  int e = errno;
  close(fd);
  if (r < 0 && e != EEXIST) {
    errno = e;
    log_errno("modules: load %s", name);
    return -1;
  }
  return 0;
}

int modules_load_all(const char *cmdline, unsigned long cmdline_len) {
  char list[LIST_MAX + 1];
  if (file_read_text(MODULES_LIST, list, sizeof list) < 0) {
    log_errno("modules: read %s", MODULES_LIST);
    return 1;
  }
  int failures = 0;
  char *save = NULL;
  for (char *l = strtok_r(list, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    if (!*l || *l == '#') continue;
    if (load_one(l, cmdline, cmdline_len) < 0) failures++;
  }
  return failures;
}

void modules_free(void) {
  char list[LIST_MAX + 1], path[256];
  if (file_read_text(MODULES_LIST, list, sizeof list) < 0) return;
  char *save = NULL;
  for (char *l = strtok_r(list, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
    if (*l && *l != '#' && !strchr(l, '/') && snprintf(path, sizeof path, "%s/%s", MODULES_DIR, l) < (int)sizeof path)
      unlink(path);
  unlink(MODULES_LIST);
}
