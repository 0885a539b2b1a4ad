// Native test of virtio-rng through a fake driver: the device contract, random fill, the per-request fill cap, and a
// device-readable buffer refused (§5.4.6.2).
#include <stdint.h>
#include "../contract.h"
#include "rng.h"

#define MEM_SIZE (4u << 20)
#define QN 16

static struct virtio_mmio_dev *contract_create(const struct virtio_env *env, void *ctx) {
  char err[256];
  struct virtio_mmio_dev *dev = virtio_rng_create(env, err, sizeof err);
  if (!dev) fprintf(stderr, "%s\n", err);
  return dev;
}

static void contract_request(struct fake_driver *d) {
  struct fd_buf b = {fd_alloc(d, 64, 8), 64, true};
  CHECK(fd_add(d, 0, &b, 1) >= 0);
}

static void test_fill(void) {
  char err[256];
  struct fake_driver d;
  fd_setup(&d, MEM_SIZE, NULL);
  d.dev = virtio_rng_create(&d.env, err, sizeof err);
  CHECK(d.dev);
  CHECK(fd_init(&d, fd_device_features(&d), QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  /* Random-looking bytes over two descriptors. */
  uint64_t a = fd_alloc(&d, 4096, 8), b = fd_alloc(&d, 100, 8);
  struct fd_buf bufs[] = {{a, 4096, true}, {b, 100, true}};
  CHECK(fd_add(&d, 0, bufs, 2) >= 0);
  fd_kick(&d, 0);
  uint32_t id, len;
  CHECK(fd_used(&d, 0, &id, &len) && len == 4196);
  int zeros = 0;
  for (int i = 0; i < 4096; i++) zeros += ((uint8_t *)fd_ptr(&d, a))[i] == 0;
  CHECK(zeros < 100); /* ~16 expected from uniform bytes */
  /* One request fills at most 64 KiB however much is offered (§5.4.6.1 "MAY" fill less). */
  uint64_t big = fd_alloc(&d, 200 * 1024, 8);
  struct fd_buf bb = {big, 200 * 1024, true};
  CHECK(fd_add(&d, 0, &bb, 1) >= 0);
  fd_kick(&d, 0);
  CHECK(fd_used(&d, 0, &id, &len) && len == 64 * 1024);
  /* A device-readable buffer is a driver error. */
  struct fd_buf ro = {fd_alloc(&d, 16, 8), 16, false};
  CHECK(fd_add(&d, 0, &ro, 1) >= 0);
  fd_kick(&d, 0);
  CHECK(fd_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
  fd_teardown(&d);
}

int main(void) {
  contract_run(&(struct contract_device){.name = "rng", .device_id = VIRTIO_ID_ENTROPY, .num_queues = 1,
                                         .create = contract_create, .request_queue = 0,
                                         .post_request = contract_request},
               NULL);
  test_fill();
  printf("rng_test: ok\n");
  return 0;
}
