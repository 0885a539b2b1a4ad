// vCPU threads: KVM_RUN loop, PIO/MMIO dispatch to the buses, and classification of fatal exits.
#include "vcpu.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Local APIC register offsets and LVT delivery modes (Intel SDM vol. 3, 10.5.1). */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_DELIVERY_MODE_SHIFT 8
#define APIC_DELIVERY_MODE_MASK (7u << APIC_DELIVERY_MODE_SHIFT)
#define APIC_MODE_NMI 4u
#define APIC_MODE_EXTINT 7u
/* The signal that pulls a vCPU thread out of KVM_RUN (with kvm_run.immediate_exit as the race guard). */
#define VCPU_KICK_SIGNAL SIGUSR1
#define KVM_MAX_CPUID_ENTRIES 256
#define CPUID_1_ECX_HYPERVISOR (1u << 31)

static void kick_handler(int sig) { (void)sig; }

static int fail(char *err, size_t errlen, const char *what) {
  snprintf(err, errlen, "%s: %s", what, strerror(errno));
  return -1;
}

/* Only the APIC id / topology fields differ per vCPU, plus the "running under a hypervisor" bit that KVM leaves
 * to userspace (QEMU and Firecracker set it too): without it Linux never looks at the KVM leaves and boots
 * without kvm-clock. The KVM signature leaf itself stays unchanged, so a PVM guest still detects PVM (DESIGN.md 3). */
static void cpuid_set_apic_id(struct kvm_cpuid2 *cpuid, uint32_t id) {
  for (uint32_t i = 0; i < cpuid->nent; i++) {
    struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
    switch (e->function) {
      case 0x1: /* EBX[31:24] initial APIC id; ECX[31] hypervisor present */
        e->ebx = (e->ebx & 0x00ffffffu) | (id << 24);
        e->ecx |= CPUID_1_ECX_HYPERVISOR;
        break;
      case 0xb:  /* extended topology: EDX = x2APIC id */
      case 0x1f: /* V2 extended topology */
        e->edx = id;
        break;
      case 0x8000001e: /* AMD extended APIC id */
        e->eax = id;
        break;
      default:
        break;
    }
  }
}

static int lapic_set_lint(int fd) {
  struct kvm_lapic_state lapic;
  if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0) return -1;
  uint32_t lvt0, lvt1;
  memcpy(&lvt0, &lapic.regs[APIC_LVT0], 4);
  memcpy(&lvt1, &lapic.regs[APIC_LVT1], 4);
  lvt0 = (lvt0 & ~APIC_DELIVERY_MODE_MASK) | (APIC_MODE_EXTINT << APIC_DELIVERY_MODE_SHIFT);
  lvt1 = (lvt1 & ~APIC_DELIVERY_MODE_MASK) | (APIC_MODE_NMI << APIC_DELIVERY_MODE_SHIFT);
  memcpy(&lapic.regs[APIC_LVT0], &lvt0, 4);
  memcpy(&lapic.regs[APIC_LVT1], &lvt1, 4);
  return ioctl(fd, KVM_SET_LAPIC, &lapic);
}

int vcpus_create(struct vm *vm, char *err, size_t errlen) {
  int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size <= 0) return fail(err, errlen, "KVM_GET_VCPU_MMAP_SIZE");
  size_t cpuid_bytes = sizeof(struct kvm_cpuid2) + KVM_MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
  struct kvm_cpuid2 *supported = calloc(1, cpuid_bytes);
  struct kvm_cpuid2 *cpuid = calloc(1, cpuid_bytes);
  if (!supported || !cpuid) {
    free(supported);
    free(cpuid);
    return fail(err, errlen, "calloc cpuid");
  }
  supported->nent = KVM_MAX_CPUID_ENTRIES;
  int rc = -1;
  /* The kick handler is process-wide; set here, during setup, because a pooled vmm starts its vCPU threads under
   * seccomp, which does not allow rt_sigaction. No SA_RESTART: KVM_RUN must return EINTR. */
  struct sigaction sa = {.sa_handler = kick_handler};
  sigemptyset(&sa.sa_mask);
  if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0) {
    fail(err, errlen, "sigaction");
    goto out;
  }
  if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, supported) < 0) {
    fail(err, errlen, "KVM_GET_SUPPORTED_CPUID");
    goto out;
  }
  for (int i = 0; i < vm->nvcpus; i++) {
    struct vcpu *c = &vm->vcpus[i];
    c->vm = vm;
    c->index = i;
    c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
    if (c->fd < 0) {
      fail(err, errlen, "KVM_CREATE_VCPU");
      goto out;
    }
    c->run_size = (size_t)mmap_size;
    void *run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (run == MAP_FAILED) {
      fail(err, errlen, "mmap kvm_run");
      goto out;
    }
    c->run = run;
    memcpy(cpuid, supported, cpuid_bytes);
    cpuid_set_apic_id(cpuid, (uint32_t)i);
    if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0) {
      fail(err, errlen, "KVM_SET_CPUID2");
      goto out;
    }
    if (lapic_set_lint(c->fd) < 0) {
      fail(err, errlen, "KVM_GET/SET_LAPIC");
      goto out;
    }
  }
  rc = 0;
out:
  free(supported);
  free(cpuid);
  return rc;
}

/* PIO: string instructions repeat `count` times over consecutive `size`-byte items in the kvm_run page. */
static void vcpu_handle_io(struct vcpu *c) {
  struct kvm_run *run = c->run;
  uint32_t size = run->io.size, count = run->io.count;
  uint64_t off = run->io.data_offset;
  if (size == 0 || size > 8 || off > c->run_size || (uint64_t)size * count > c->run_size - off) {
    vm_request_exit(c->vm, VM_EXIT_INTERNAL_ERROR, "bad PIO exit: port 0x%x size %u count %u", run->io.port, size, count);
    return;
  }
  uint8_t *data = (uint8_t *)run + off;
  for (uint32_t i = 0; i < count; i++, data += size) {
    if (run->io.direction == KVM_EXIT_IO_OUT)
      bus_write(&c->vm->pio, run->io.port, data, size);
    else
      bus_read(&c->vm->pio, run->io.port, data, size);
  }
}

static void vcpu_handle_mmio(struct vcpu *c) {
  struct kvm_run *run = c->run;
  uint32_t len = run->mmio.len;
  if (len == 0 || len > sizeof run->mmio.data) {
    vm_request_exit(c->vm, VM_EXIT_INTERNAL_ERROR, "bad MMIO exit: addr 0x%llx len %u",
                    (unsigned long long)run->mmio.phys_addr, len);
    return;
  }
  if (run->mmio.is_write)
    bus_write(&c->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
  else
    bus_read(&c->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
}

static void vcpu_handle_exit(struct vcpu *c) {
  struct vm *vm = c->vm;
  struct kvm_run *run = c->run;
  switch (run->exit_reason) {
    case KVM_EXIT_IO: vcpu_handle_io(c); break;
    case KVM_EXIT_MMIO: vcpu_handle_mmio(c); break;
    case KVM_EXIT_INTR: break;
    case KVM_EXIT_SHUTDOWN:
      /* A triple fault. After an i8042 reset pulse it is the reboot itself (reboot=k), otherwise a crash. */
      if (atomic_load(&vm->reset_requested) && !atomic_load(&vm->panic_seen))
        vm_request_exit(vm, VM_EXIT_REBOOT, "reset");
      else
        vm_request_exit(vm, VM_EXIT_PANIC, "triple fault (KVM_EXIT_SHUTDOWN) on vcpu %d", c->index);
      break;
    case KVM_EXIT_SYSTEM_EVENT:
      if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
        vm_request_exit(vm, VM_EXIT_POWEROFF, "system event shutdown");
      else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
        vm_request_exit(vm, atomic_load(&vm->panic_seen) ? VM_EXIT_PANIC : VM_EXIT_REBOOT, "system event reset");
      else
        vm_request_exit(vm, VM_EXIT_PANIC, "system event %u", run->system_event.type);
      break;
    case KVM_EXIT_HLT:
      /* Only without an in-kernel irqchip; ours always has one, so a HLT exit means the guest is gone. */
      vm_request_exit(vm, VM_EXIT_INTERNAL_ERROR, "unexpected HLT exit on vcpu %d", c->index);
      break;
    case KVM_EXIT_FAIL_ENTRY:
      vm_request_exit(vm, VM_EXIT_INTERNAL_ERROR, "KVM_EXIT_FAIL_ENTRY reason 0x%llx on vcpu %d",
                      (unsigned long long)run->fail_entry.hardware_entry_failure_reason, c->index);
      break;
    case KVM_EXIT_INTERNAL_ERROR:
      vm_request_exit(vm, VM_EXIT_INTERNAL_ERROR, "KVM_EXIT_INTERNAL_ERROR suberror %u on vcpu %d",
                      run->internal.suberror, c->index);
      break;
    default:
      vm_request_exit(vm, VM_EXIT_INTERNAL_ERROR, "unhandled KVM exit %u on vcpu %d", run->exit_reason, c->index);
      break;
  }
}

/* Parks the calling vCPU thread while a pause is requested or forever once the VM is exiting. */
static void vcpu_park(struct vcpu *c) {
  struct vm *vm = c->vm;
  pthread_mutex_lock(&vm->lock);
  vm->parked++;
  pthread_cond_broadcast(&vm->cond);
  while ((vm->pause_requested || atomic_load(&vm->exit_reason) != VM_EXIT_NONE))
    pthread_cond_wait(&vm->cond, &vm->lock);
  vm->parked--;
  pthread_mutex_unlock(&vm->lock);
}

static void *vcpu_thread(void *arg) {
  struct vcpu *c = arg;
  struct vm *vm = c->vm;
  for (;;) {
    /* Clear the guard first, then look at the flags: a kick after this point makes KVM_RUN return at once. */
    __atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&vm->lock);
    bool park = vm->pause_requested || atomic_load(&vm->exit_reason) != VM_EXIT_NONE;
    pthread_mutex_unlock(&vm->lock);
    if (park) {
      vcpu_park(c);
      continue;
    }
    uint64_t none = 0;
    if (!atomic_load_explicit(&vm->first_enter_ns, memory_order_relaxed))
      atomic_compare_exchange_strong(&vm->first_enter_ns, &none, vm_now_ns());
    if (ioctl(c->fd, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      vm_request_exit(vm, VM_EXIT_ERROR, "KVM_RUN on vcpu %d: %s", c->index, strerror(errno));
      continue;
    }
    /* First guest exit of the VM: the end of "restore/boot to running" in `stats` (bench:restore). */
    none = 0;
    if (!atomic_load_explicit(&vm->first_exit_ns, memory_order_relaxed))
      atomic_compare_exchange_strong(&vm->first_exit_ns, &none, vm_now_ns());
    vcpu_handle_exit(c);
  }
  return NULL;
}

int vcpus_start(struct vm *vm, char *err, size_t errlen) {
  for (int i = 0; i < vm->nvcpus; i++) {
    struct vcpu *c = &vm->vcpus[i];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* the run loop needs little; keeps the footprint small */
    int rc = pthread_create(&c->thread, &attr, vcpu_thread, c);
    pthread_attr_destroy(&attr);
    if (rc) {
      errno = rc;
      return fail(err, errlen, "pthread_create vcpu");
    }
    c->thread_started = true;
    pthread_mutex_lock(&vm->lock);
    vm->running_threads++;
    pthread_mutex_unlock(&vm->lock);
  }
  return 0;
}

static void vcpus_kick(struct vm *vm) {
  for (int i = 0; i < vm->nvcpus; i++) {
    struct vcpu *c = &vm->vcpus[i];
    if (!c->thread_started) continue;
    __atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_kill(c->thread, VCPU_KICK_SIGNAL);
  }
}

int vcpus_pause(struct vm *vm) {
  pthread_mutex_lock(&vm->lock);
  vm->pause_requested = true;
  pthread_mutex_unlock(&vm->lock);
  vcpus_kick(vm);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 2;
  int rc = 0;
  pthread_mutex_lock(&vm->lock);
  while (vm->parked < vm->running_threads && rc == 0) {
    if (pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline) == ETIMEDOUT) rc = -1;
  }
  pthread_mutex_unlock(&vm->lock);
  if (rc) vcpus_kick(vm); /* leave pause_requested set: the stragglers park when they next return */
  return rc;
}

void vcpus_resume(struct vm *vm) {
  pthread_mutex_lock(&vm->lock);
  vm->pause_requested = false;
  pthread_cond_broadcast(&vm->cond);
  pthread_mutex_unlock(&vm->lock);
}

bool vcpus_paused(struct vm *vm) {
  pthread_mutex_lock(&vm->lock);
  bool p = vm->pause_requested;
  pthread_mutex_unlock(&vm->lock);
  return p;
}
