// Native round-trip tests: state file format (caps, checksum), core devices, and vCPU + VM state through real KVM.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "legacy.h"
#include "serial.h"
#include "snapshot/diff.h"
#include "snapshot/format.h"
#include "snapshot/vcpu_state.h"
#include "vcpu.h"

#define CHECK(cond)                                               \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                    \
    }                                                             \
  } while (0)

static uint8_t *dup_image(const uint8_t *img, size_t len) {
  uint8_t *b = malloc(len);
  memcpy(b, img, len);
  return b;
}

static void test_format(void) {
  CHECK(snap_crc32c(0, "123456789", 9) == 0xE3069283u); /* the CRC32C check value (RFC 3720 B.4) */
  struct snap_writer w;
  snap_writer_init(&w, 1, 32u << 20, SNAP_HOST_PVM);
  uint32_t a = 0xabcd1234;
  char big[100] = "payload";
  snap_writer_add(&w, SNAP_SEC_SERIAL, 0, &a, sizeof a);
  snap_writer_add(&w, SNAP_SEC_CMOS, 3, big, sizeof big);
  size_t len;
  const uint8_t *img = snap_writer_finish(&w, &len);
  CHECK(img);
  char err[256];
  struct snap_reader r;
  CHECK(snap_reader_open(&r, dup_image(img, len), len, SNAP_HOST_PVM, err, sizeof err) == 0);
  CHECK(r.hdr.nvcpus == 1 && r.hdr.mem_bytes == 32u << 20 && r.hdr.nsections == 2);
  const uint32_t *pa = snap_reader_find(&r, SNAP_SEC_SERIAL, 0, sizeof a, NULL);
  CHECK(pa && *pa == a);
  size_t blen;
  CHECK(!strcmp(snap_reader_find(&r, SNAP_SEC_CMOS, 3, 0, &blen), "payload") && blen == sizeof big);
  CHECK(!snap_reader_find(&r, SNAP_SEC_SERIAL, 0, 8, NULL)); /* wrong size is not returned */
  CHECK(!snap_reader_find(&r, SNAP_SEC_I8042, 0, 0, NULL));
  snap_reader_free(&r);
  /* refusals: other host kind, every single flipped byte, truncation, a section length past the end */
  CHECK(snap_reader_open(&r, dup_image(img, len), len, SNAP_HOST_HARDWARE, err, sizeof err) < 0 &&
        strstr(err, "pvm KVM host"));
  snap_reader_free(&r);
  for (size_t i = 0; i < len; i++) {
    uint8_t *b = dup_image(img, len);
    b[i] ^= 0x01;
    CHECK(snap_reader_open(&r, b, len, SNAP_HOST_PVM, err, sizeof err) < 0);
    snap_reader_free(&r);
  }
  for (size_t cut = 0; cut < len; cut += 7) {
    CHECK(snap_reader_open(&r, dup_image(img, len), cut, SNAP_HOST_PVM, err, sizeof err) < 0);
    snap_reader_free(&r);
  }
  uint8_t *b = dup_image(img, len);
  struct snap_section_hdr *s = (struct snap_section_hdr *)(b + sizeof(struct snap_header));
  s->len = 0xffffff00u; /* lie about a length, with a valid checksum */
  ((struct snap_header *)b)->crc32c = 0;
  ((struct snap_header *)b)->crc32c = snap_crc32c(0, b, len);
  CHECK(snap_reader_open(&r, b, len, SNAP_HOST_PVM, err, sizeof err) < 0 && strstr(err, "inconsistent"));
  snap_reader_free(&r);
  /* caps on the writer: an oversized section poisons the image */
  struct snap_writer w2;
  snap_writer_init(&w2, 1, 1, SNAP_HOST_PVM);
  snap_writer_add(&w2, SNAP_SEC_SERIAL, 0, big, SNAP_MAX_SECTION + 1);
  CHECK(!snap_writer_finish(&w2, &len));
  snap_writer_free(&w2);
  snap_writer_free(&w);
}

static void test_devices(void) {
  struct serial s1 = {0}, s2 = {0};
  pthread_mutex_init(&s1.lock, NULL);
  pthread_mutex_init(&s2.lock, NULL);
  s1.ier = 2, s1.lcr = 3, s1.mcr = 0x0b, s1.scr = 0x5a, s1.dll = 1, s1.dlm = 0, s1.thre_pending = true;
  struct serial_state ss, ss2;
  serial_save(&s1, &ss);
  serial_restore(&s2, &ss);
  serial_save(&s2, &ss2);
  CHECK(!memcmp(&ss, &ss2, sizeof ss) && s2.scr == 0x5a && s2.thre_pending);

  struct i8042 k1 = {.ctr = 0x47, .out = 0x55, .out_full = true, .pending_cmd = 0x60}, k2 = {0};
  struct i8042_state ks;
  i8042_save(&k1, &ks);
  i8042_restore(&k2, &ks);
  CHECK(k2.ctr == 0x47 && k2.out == 0x55 && k2.out_full && k2.pending_cmd == 0x60);

  struct cmos c1 = {.index = 0x0b}, c2 = {0};
  for (int i = 0; i < 128; i++) c1.ram[i] = (uint8_t)(i * 3);
  struct cmos_state cs;
  cmos_save(&c1, &cs);
  cs.index |= 0x80; /* a hostile index is masked to the 128-byte RAM */
  cmos_restore(&c2, &cs);
  CHECK(c2.index == 0x0b && !memcmp(c1.ram, c2.ram, sizeof c1.ram));
}

/* vCPU: set distinctive registers in VM A, save, restore into a fresh VM B, read back. */
static void test_vcpu(void) {
  if (access("/dev/kvm", R_OK | W_OK) != 0) {
    printf("snapshot_test: no /dev/kvm, vCPU round trip skipped\n");
    return;
  }
  char err[256];
  struct vm a, b;
  CHECK(vm_create(&a, 16u << 20, 1, err, sizeof err) == 0);
  CHECK(vcpus_create(&a, err, sizeof err) == 0);
  struct kvm_regs regs;
  CHECK(ioctl(a.vcpus[0].fd, KVM_GET_REGS, &regs) == 0);
  regs.rax = 0x1122334455667788ull, regs.r12 = 42, regs.rip = 0x100000, regs.rflags = 0x2;
  CHECK(ioctl(a.vcpus[0].fd, KVM_SET_REGS, &regs) == 0);
  struct snap_writer w;
  snap_writer_init(&w, 1, a.mem.size, snap_host_kind());
  CHECK(vcpu_state_save(&a.vcpus[0], &w, err, sizeof err) == 0);
  size_t len;
  const uint8_t *img = snap_writer_finish(&w, &len);
  CHECK(img);
  struct snap_reader r;
  CHECK(snap_reader_open(&r, dup_image(img, len), len, snap_host_kind(), err, sizeof err) == 0);
  CHECK(vm_create(&b, 16u << 20, 1, err, sizeof err) == 0);
  CHECK(vcpus_create(&b, err, sizeof err) == 0);
  if (vcpu_state_restore(&b.vcpus[0], &r, err, sizeof err) != 0) {
    fprintf(stderr, "restore: %s\n", err);
    exit(1);
  }
  struct kvm_regs got;
  CHECK(ioctl(b.vcpus[0].fd, KVM_GET_REGS, &got) == 0);
  CHECK(got.rax == regs.rax && got.r12 == 42 && got.rip == 0x100000);
  struct kvm_sregs sa, sb;
  CHECK(ioctl(a.vcpus[0].fd, KVM_GET_SREGS, &sa) == 0 && ioctl(b.vcpus[0].fd, KVM_GET_SREGS, &sb) == 0);
  CHECK(sa.cr0 == sb.cr0 && sa.cr4 == sb.cr4 && sa.efer == sb.efer && sa.apic_base == sb.apic_base);
  snap_reader_free(&r);
  /* A state file without the vCPU's sections is refused, saying what is missing. */
  struct snap_writer empty;
  snap_writer_init(&empty, 1, a.mem.size, snap_host_kind());
  img = snap_writer_finish(&empty, &len);
  CHECK(snap_reader_open(&r, dup_image(img, len), len, snap_host_kind(), err, sizeof err) == 0);
  CHECK(vcpu_state_restore(&b.vcpus[0], &r, err, sizeof err) < 0 && strstr(err, "SNAP_SEC_VCPU_SREGS"));
  snap_reader_free(&r);
  snap_writer_free(&empty);
  snap_writer_free(&w);
  vm_destroy(&a);
  vm_destroy(&b);
}

/* Diff snapshots: version 2 is read, run lists are bounded and checked, bitmaps become runs, base identity. */
static void test_diff_format(void) {
  struct snap_writer w;
  snap_writer_init(&w, 1, 32u << 20, SNAP_HOST_PVM);
  snap_writer_mark_diff(&w);
  struct snap_diff_run runs[3] = {{0, 1}, {5, 2}, {8191, 1}};
  snap_writer_add(&w, SNAP_SEC_DIFF_RUNS, 0, runs, sizeof runs);
  size_t len;
  const uint8_t *img = snap_writer_finish(&w, &len);
  char err[256];
  struct snap_reader r;
  CHECK(snap_reader_open(&r, dup_image(img, len), len, SNAP_HOST_PVM, err, sizeof err) == 0);
  CHECK(r.hdr.version == SNAP_VERSION_DIFF);
  size_t rl;
  const struct snap_diff_run *got = snap_reader_find(&r, SNAP_SEC_DIFF_RUNS, 0, 0, &rl);
  CHECK(got && rl == sizeof runs && snap_diff_runs_check(got, 3, 8192, err, sizeof err) == 0);
  snap_reader_free(&r);
  snap_writer_free(&w);
  /* an unknown version is refused by number */
  snap_writer_init(&w, 1, 32u << 20, SNAP_HOST_PVM);
  img = snap_writer_finish(&w, &len);
  uint8_t *b = dup_image(img, len);
  ((struct snap_header *)b)->version = 3;
  ((struct snap_header *)b)->crc32c = 0;
  ((struct snap_header *)b)->crc32c = snap_crc32c(0, b, len);
  CHECK(snap_reader_open(&r, b, len, SNAP_HOST_PVM, err, sizeof err) < 0 && strstr(err, "version 3"));
  snap_reader_free(&r);
  snap_writer_free(&w);
  /* run lists: outside memory, overlapping, out of order, empty runs, none, too many */
  CHECK(snap_diff_runs_check(runs, 3, 8191, err, sizeof err) < 0 && strstr(err, "outside memory"));
  struct snap_diff_run overlap[2] = {{0, 4}, {3, 1}}, backwards[2] = {{9, 1}, {2, 1}}, empty[1] = {{4, 0}};
  CHECK(snap_diff_runs_check(overlap, 2, 100, err, sizeof err) < 0);
  CHECK(snap_diff_runs_check(backwards, 2, 100, err, sizeof err) < 0);
  CHECK(snap_diff_runs_check(empty, 1, 100, err, sizeof err) < 0);
  CHECK(snap_diff_runs_check(runs, 0, 100, err, sizeof err) < 0);
  CHECK(snap_diff_runs_check(runs, SNAP_DIFF_MAX_RUNS + 1, 1u << 30, err, sizeof err) < 0);
  struct snap_diff_run big[1] = {{0xffffffffu, 0xffffffffu}}; /* first + npages overflows 32 bits */
  CHECK(snap_diff_runs_check(big, 1, 1u << 20, err, sizeof err) < 0);
  /* bitmap -> runs: pages 0-2, 64, 127-128 */
  uint64_t bm[4] = {0};
  uint64_t set[] = {0, 1, 2, 64, 127, 128};
  for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) bm[set[i] / 64] |= 1ull << (set[i] % 64);
  struct snap_diff_run out[8];
  CHECK(snap_diff_runs_from_bitmap(bm, 256, out) == 3);
  CHECK(out[0].first_page == 0 && out[0].npages == 3 && out[1].first_page == 64 && out[1].npages == 1);
  CHECK(out[2].first_page == 127 && out[2].npages == 2);
  /* alternate pages: more runs than the cap -> the caller writes a full snapshot */
  uint64_t npages = 2ull * (SNAP_DIFF_MAX_RUNS + 1);
  uint64_t *alt = calloc(npages / 64 + 1, sizeof *alt);
  for (uint64_t p = 0; p < npages; p += 2) alt[p / 64] |= 1ull << (p % 64);
  struct snap_diff_run *many = calloc(SNAP_DIFF_MAX_RUNS, sizeof *many);
  CHECK(snap_diff_runs_from_bitmap(alt, npages, many) == SNAP_DIFF_MAX_RUNS + 1);
  free(alt);
  free(many);
  /* base identity: a relative path is refused; the same stat matches, another mtime or inode does not */
  struct stat st = {.st_dev = 1, .st_ino = 2, .st_size = 32 << 20};
  struct snap_diff_base base;
  CHECK(snap_diff_base_set(&base, "relative/dir", &st) < 0);
  CHECK(snap_diff_base_set(&base, "/snap/base", &st) == 0 && !strcmp(base.path, "/snap/base"));
  CHECK(snap_diff_base_check(&base, &st, err, sizeof err) == 0);
  st.st_mtim.tv_nsec = 1;
  CHECK(snap_diff_base_check(&base, &st, err, sizeof err) < 0 && strstr(err, "changed since this diff"));
  st.st_mtim.tv_nsec = 0;
  st.st_ino = 3;
  CHECK(snap_diff_base_check(&base, &st, err, sizeof err) < 0);
}

int main(void) {
  test_format();
  test_diff_format();
  test_devices();
  test_vcpu();
  printf("snapshot_test: ok\n");
  return 0;
}
