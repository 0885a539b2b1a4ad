// Guest identity and basics set by PID 1: hostname, loopback, the sandbox user.
#include "system.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-io.h"
#include "log.h"
#include "user-db.h"

void system_set_hostname(const char *name) {
  if (sethostname(name, strlen(name)) < 0) log_errno("sethostname %s", name);
}

int system_lo_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_errno("lo: socket");
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int rc = 0;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
    log_errno("lo: SIOCGIFFLAGS");
    rc = -1;
  } else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
      log_errno("lo: SIOCSIFFLAGS");
      rc = -1;
    }
  }
  close(fd);
  return rc;
}

void system_check_user(void) {
  static char buf[65536];
  ssize_t n = file_read_text("/etc/passwd", buf, sizeof buf);
  struct user_entry u;
  if (n < 0 || !user_db_find(buf, (size_t)n, "user", &u)) {
    log_info("user 'user' missing from /etc/passwd: the image was not built by mkrootfs.sh");
    return;
  }
  struct stat st;
  if (u.uid != 1000 || strcmp(u.home, "/home/user") != 0 || stat(u.home, &st) < 0)
    log_info("user 'user' is uid %u home %s (expected 1000, /home/user, existing)", (unsigned)u.uid, u.home);
}

void system_write_id(const char *id) {
  int fd = open("/run/onebox/sandbox-id", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    log_errno("write /run/onebox/sandbox-id");
    return;
  }
  size_t n = strlen(id);
  if (write(fd, id, n) != (ssize_t)n || write(fd, "\n", 1) != 1) log_errno("write sandbox-id");
  close(fd);
}
