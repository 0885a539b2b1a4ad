// vsock-cat: host-side test tool; connects to CID:PORT over AF_VSOCK, stdin -> socket (then
// half-close), socket -> stdout until EOF. For trying the guest's vsock services by hand.
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: vsock-cat CID PORT\n");
    return 2;
  }
  char *end;
  unsigned long cid = strtoul(argv[1], &end, 10);
  if (*end || cid > 0xffffffffUL) return 2;
  unsigned long port = strtoul(argv[2], &end, 10);
  if (*end || port > 0xffffffffUL) return 2;
  int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = (unsigned)cid, .svm_port = (unsigned)port};
  /* The default 2 s connect timeout is too short for a guest under emulation. */
  struct timeval tv = {.tv_sec = 30};
  if (fd >= 0 && setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof tv) < 0)
    fprintf(stderr, "vsock-cat: connect timeout: %s\n", strerror(errno));
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    fprintf(stderr, "vsock-cat: connect %lu:%lu: %s\n", cid, port, strerror(errno));
    return 1;
  }
  struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
  char buf[16384];
  int in_open = 1;
  for (;;) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (in_open && p[0].revents) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) {
        in_open = 0;
        p[0].fd = -1;
        shutdown(fd, SHUT_WR);
      } else if (write(fd, buf, (size_t)n) != n) {
        return 1;
      }
    }
    if (p[1].revents) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) return n < 0 ? 1 : 0;
      if (write(1, buf, (size_t)n) != n) return 1;
    }
  }
}
