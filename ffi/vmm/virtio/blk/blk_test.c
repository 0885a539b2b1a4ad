// Native test of virtio-blk through a fake driver: the device contract, write/read-back checksum, flush, id, RO,
// out-of-range.
#include <fcntl.h>
#include <stdint.h>
#include "../contract.h"
#include "blk.h"

#define MEM_SIZE (4u << 20)
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define DISK_SECTORS 2048
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_BOGUS 99
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define F_RO (1ull << 5)
#define F_FLUSH (1ull << 9)

struct req_hdr {
  uint32_t type, reserved;
  uint64_t sector;
};

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/* Sends one request with data split over two descriptors; returns the status byte, *used = used length. */
static uint8_t blk_req(struct fake_driver *d, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
                       uint32_t *used) {
  uint64_t hdr = fd_alloc(d, sizeof(struct req_hdr), 8), st = fd_alloc(d, 1, 1);
  *(struct req_hdr *)fd_ptr(d, hdr) = (struct req_hdr){type, 0, sector};
  *(uint8_t *)fd_ptr(d, st) = 0xee;
  bool in = type != T_OUT;
  struct fd_buf bufs[4] = {{hdr, sizeof(struct req_hdr), false}};
  int n = 1;
  if (len) {
    uint32_t half = len / 2;
    bufs[n++] = (struct fd_buf){data, half, in};
    bufs[n++] = (struct fd_buf){data + half, len - half, in};
  }
  bufs[n++] = (struct fd_buf){st, 1, true};
  int head = fd_add(d, 0, bufs, n);
  CHECK(head >= 0);
  fd_kick(d, 0);
  uint32_t id;
  CHECK(fd_used(d, 0, &id, used));
  CHECK(id == (uint32_t)head);
  return *(uint8_t *)fd_ptr(d, st);
}

static void make_disk(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0 && ftruncate(fd, DISK_SECTORS * 512) == 0);
  close(fd);
}

static void test_rw(const char *path) {
  struct fake_driver d;
  char err[256];
  fd_setup(&d, MEM_SIZE, NULL);
  d.dev = virtio_blk_create(&d.env, path, false, err, sizeof err);
  CHECK(d.dev);
  uint64_t f = fd_device_features(&d);
  CHECK((f & F_FLUSH) && !(f & F_RO));
  uint64_t cap;
  virtio_mmio_read(d.dev, VIRTIO_MMIO_CONFIG, (uint8_t *)&cap, 8);
  CHECK(cap == DISK_SECTORS);
  CHECK(fd_init(&d, V1 | F_FLUSH, 64) & VIRTIO_CONFIG_S_FEATURES_OK);

  uint32_t len = 8 * 512, used;
  uint64_t w = fd_alloc(&d, len, 512), r = fd_alloc(&d, len, 512);
  uint8_t *wp = fd_ptr(&d, w);
  for (uint32_t i = 0; i < len; i++) wp[i] = (uint8_t)(i * 31 + 7);
  CHECK(blk_req(&d, T_OUT, 100, w, len, &used) == S_OK && used == 1);
  CHECK(blk_req(&d, T_FLUSH, 0, 0, 0, &used) == S_OK && used == 1);
  CHECK(blk_req(&d, T_IN, 100, r, len, &used) == S_OK && used == len + 1);
  CHECK(fnv1a(fd_ptr(&d, r), len) == fnv1a(wp, len));
  /* The bytes really are in the file at sector 100. */
  uint8_t filebuf[4096];
  int fd = open(path, O_RDONLY);
  CHECK(pread(fd, filebuf, len, 100 * 512) == (ssize_t)len);
  close(fd);
  CHECK(fnv1a(filebuf, len) == fnv1a(wp, len));

  /* Last sector is fine; one past, or straddling the end, is an I/O error. */
  CHECK(blk_req(&d, T_IN, DISK_SECTORS - 1, r, 512, &used) == S_OK);
  CHECK(blk_req(&d, T_IN, DISK_SECTORS, r, 512, &used) == S_IOERR && used == 1);
  CHECK(blk_req(&d, T_OUT, DISK_SECTORS - 4, w, len, &used) == S_IOERR);
  CHECK(blk_req(&d, T_IN, UINT64_MAX / 256, r, 512, &used) == S_IOERR); /* sector*512 overflows */
  CHECK(blk_req(&d, T_IN, 0, r, 100, &used) == S_IOERR);                /* not a whole sector */
  CHECK(blk_req(&d, T_BOGUS, 0, 0, 0, &used) == S_UNSUPP);

  uint64_t idbuf = fd_alloc(&d, 20, 8);
  CHECK(blk_req(&d, T_GET_ID, 0, idbuf, 20, &used) == S_OK && used == 21);
  CHECK(memcmp(fd_ptr(&d, idbuf), "onebox-", 7) == 0);
  CHECK(fd_irqs(&d) >= 1);
  fd_teardown(&d);
}

static void test_ro(const char *path) {
  struct fake_driver d;
  char err[256];
  fd_setup(&d, MEM_SIZE, NULL);
  d.dev = virtio_blk_create(&d.env, path, true, err, sizeof err);
  CHECK(d.dev);
  CHECK(fd_device_features(&d) & F_RO);
  CHECK(fd_init(&d, V1 | F_RO, 64) & VIRTIO_CONFIG_S_FEATURES_OK);
  uint32_t used;
  uint64_t w = fd_alloc(&d, 512, 512);
  memset(fd_ptr(&d, w), 0x5a, 512);
  CHECK(blk_req(&d, T_OUT, 0, w, 512, &used) == S_IOERR);
  CHECK(blk_req(&d, T_IN, 0, w, 512, &used) == S_OK);
  CHECK(((uint8_t *)fd_ptr(&d, w))[0] == 0); /* the write did not land */
  fd_teardown(&d);
}

static void test_create_errors(void) {
  struct fake_driver d;
  char err[256] = "";
  fd_setup(&d, MEM_SIZE, NULL);
  CHECK(!virtio_blk_create(&d.env, "/nonexistent/disk.img", false, err, sizeof err));
  CHECK(strstr(err, "/nonexistent/disk.img"));
  CHECK(!virtio_blk_create(&d.env, "/tmp", false, err, sizeof err));
  fd_teardown(&d);
}

static struct virtio_mmio_dev *contract_create(const struct virtio_env *env, void *path) {
  char err[256];
  struct virtio_mmio_dev *dev = virtio_blk_create(env, path, false, err, sizeof err);
  if (!dev) fprintf(stderr, "%s\n", err);
  return dev;
}

/* A GET_ID request: header, 20 writable id bytes, status. */
static void contract_request(struct fake_driver *d) {
  uint64_t hdr = fd_alloc(d, sizeof(struct req_hdr), 8), id = fd_alloc(d, 20, 8), st = fd_alloc(d, 1, 1);
  *(struct req_hdr *)fd_ptr(d, hdr) = (struct req_hdr){T_GET_ID, 0, 0};
  struct fd_buf bufs[] = {{hdr, sizeof(struct req_hdr), false}, {id, 20, true}, {st, 1, true}};
  CHECK(fd_add(d, 0, bufs, 3) >= 0);
}

int main(void) {
  char path[] = "/tmp/virtio_blk_test.XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  make_disk(path);
  contract_run(&(struct contract_device){.name = "blk", .device_id = VIRTIO_ID_BLOCK, .num_queues = 1,
                                         .create = contract_create, .ctx = path, .request_queue = 0,
                                         .post_request = contract_request},
               NULL);
  test_rw(path);
  test_ro(path);
  test_create_errors();
  unlink(path);
  printf("blk_test: ok\n");
  return 0;
}
