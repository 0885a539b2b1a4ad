// libonebox: the KVM probe behind `onebox doctor` (open /dev/kvm, API version, create a VM, caps).
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_probe.h"

int onebox_abi_version(void) { return ONEBOX_ABI_VERSION; }

/* Capabilities doctor reports; the order is the order of the PROBE_CAP_* slots. */
static const int probe_caps[PROBE_NCAPS] = {
    KVM_CAP_USER_MEMORY, KVM_CAP_IRQCHIP,   KVM_CAP_SPLIT_IRQCHIP, KVM_CAP_IMMEDIATE_EXIT,
    KVM_CAP_NR_VCPUS,    KVM_CAP_MAX_VCPUS, KVM_CAP_IRQFD,         KVM_CAP_IOEVENTFD,
};

/* ioctl_retry: KVM ioctls may be interrupted by signals (Bun's runtime uses some); retry them. */
static int ioctl_retry(int fd, unsigned long req, unsigned long arg) {
  int r;
  do r = ioctl(fd, req, arg);
  while (r < 0 && errno == EINTR);
  return r;
}

int onebox_kvm_probe(const char *dev_path, int32_t *out, int n) {
  if (n < PROBE_NSLOTS) return -EINVAL;
  for (int i = 0; i < PROBE_NSLOTS; i++) out[i] = -1;
  int kvm = open(dev_path, O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    out[PROBE_OPEN_ERRNO] = errno;
    return 0;
  }
  out[PROBE_OPEN_ERRNO] = 0;
  int v = ioctl_retry(kvm, KVM_GET_API_VERSION, 0);
  out[PROBE_API_VERSION] = v < 0 ? -errno : v;
  int sz = ioctl_retry(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  out[PROBE_VCPU_MMAP_SIZE] = sz < 0 ? -errno : sz;
  for (int i = 0; i < PROBE_NCAPS; i++) {
    int c = ioctl_retry(kvm, KVM_CHECK_EXTENSION, (unsigned long)probe_caps[i]);
    out[PROBE_CAP_FIRST + i] = c < 0 ? -errno : c;
  }
  /* KVM_CREATE_VM with the default machine type: the first thing every sandbox does. */
  int vm = ioctl_retry(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) {
    out[PROBE_CREATE_VM_ERRNO] = errno;
  } else {
    out[PROBE_CREATE_VM_ERRNO] = 0;
    int vcpu = ioctl_retry(vm, KVM_CREATE_VCPU, 0);
    out[PROBE_CREATE_VCPU_ERRNO] = vcpu < 0 ? errno : 0;
    if (vcpu >= 0) close(vcpu);
    close(vm);
  }
  close(kvm);
  return 0;
}
