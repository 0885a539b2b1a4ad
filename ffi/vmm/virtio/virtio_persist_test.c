// Native round-trip test of virtio persistence: a device saved mid-stream and restored into a fresh device keeps
// serving the same rings (rng), a mismatched device is refused, and a restored vsock sends TRANSPORT_RESET.
#include <stdint.h>
#include "persist.h"
#include "rng/rng.h"
#include "test_driver.h"
#include "vsock/vsock.h"
#include "vsock/packet.h"

#define MEM_SIZE (4u << 20)
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define EVENT_IDX (1ull << VIRTIO_F_EVENT_IDX)
#define QN 16

static int failed_count;

/* One rng request through whatever device d->dev is now; returns the used length. */
static uint32_t rng_request(struct fake_driver *d, uint32_t *id_out) {
  uint64_t a = fd_alloc(d, 256, 8);
  struct fd_buf bufs[] = {{a, 256, true}};
  int head = fd_add(d, 0, bufs, 1);
  CHECK(head >= 0);
  fd_kick(d, 0);
  uint32_t id = 0xffff, len = 0;
  CHECK(fd_used(d, 0, &id, &len));
  *id_out = id;
  return len;
}

static void test_rng_round_trip(bool event_idx) {
  char err[256];
  struct fake_driver d;
  fd_setup(&d, MEM_SIZE, NULL);
  d.dev = virtio_rng_create(&d.env, err, sizeof err);
  CHECK(d.dev);
  CHECK(fd_init(&d, V1 | (event_idx ? EVENT_IDX : 0), QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  uint32_t id;
  CHECK(rng_request(&d, &id) == 256);
  CHECK(rng_request(&d, &id) == 256);

  struct virtio_dev_state st, st2;
  pthread_mutex_lock(&d.dev->lock);
  virtio_dev_save(d.dev, &st);
  pthread_mutex_unlock(&d.dev->lock);
  CHECK(st.queues[0].ready && st.queues[0].last_avail == 2 && st.queues[0].used_idx == 2);

  /* A fresh device over the same guest memory continues the ring where the old one stopped. */
  struct virtio_mmio_dev *fresh = virtio_rng_create(&d.env, err, sizeof err);
  CHECK(fresh);
  pthread_mutex_lock(&fresh->lock);
  CHECK(virtio_dev_restore(fresh, &st, err, sizeof err) == 0);
  virtio_dev_save(fresh, &st2);
  pthread_mutex_unlock(&fresh->lock);
  CHECK(!memcmp(&st, &st2, sizeof st));
  virtio_mmio_destroy(d.dev);
  d.dev = fresh;
  CHECK(fd_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK);
  CHECK(rng_request(&d, &id) == 256);
  pthread_mutex_lock(&fresh->lock);
  virtio_dev_save(fresh, &st2);
  pthread_mutex_unlock(&fresh->lock);
  CHECK(st2.queues[0].used_idx == 3);

  /* Refusals: another device type, a ring moved outside guest memory, features never offered. */
  struct virtio_dev_state bad = st;
  bad.device_id = 2;
  CHECK(virtio_dev_restore(fresh, &bad, err, sizeof err) < 0 && strstr(err, "does not match"));
  bad = st;
  bad.queues[0].used_gpa = MEM_SIZE - 4;
  CHECK(virtio_dev_restore(fresh, &bad, err, sizeof err) < 0 && strstr(err, "outside guest memory"));
  bad = st;
  bad.driver_features |= 1ull << 40;
  CHECK(virtio_dev_restore(fresh, &bad, err, sizeof err) < 0 && strstr(err, "never offered"));
  fd_teardown(&d);
}

/* Found by the ring fuzzer: a guest that wrote features it was never offered and stopped before FEATURES_OK
 * (legal: the device judges them only at FEATURES_OK) made its own snapshot unrestorable, so the sandbox could
 * not be resumed. The attack: write every feature bit, save, restore into a fresh device. */
static void test_restore_before_features_ok(void) {
  char err[256];
  struct fake_driver d;
  fd_setup(&d, MEM_SIZE, NULL);
  d.dev = virtio_rng_create(&d.env, err, sizeof err);
  CHECK(d.dev);
  fd_wr(&d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  for (uint32_t sel = 0; sel < 2; sel++) {
    fd_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
    fd_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffffu);
  }
  struct virtio_dev_state st;
  pthread_mutex_lock(&d.dev->lock);
  virtio_dev_save(d.dev, &st);
  pthread_mutex_unlock(&d.dev->lock);
  struct virtio_mmio_dev *fresh = virtio_rng_create(&d.env, err, sizeof err);
  CHECK(fresh);
  pthread_mutex_lock(&fresh->lock);
  int rc = virtio_dev_restore(fresh, &st, err, sizeof err);
  pthread_mutex_unlock(&fresh->lock);
  if (rc != 0) {
    fprintf(stderr, "restore of a device before FEATURES_OK failed: %s\n", err);
    failed_count++;
  }
  virtio_mmio_destroy(d.dev);
  d.dev = fresh;
  /* And the features are still judged at FEATURES_OK. */
  fd_wr(&d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  CHECK(!(fd_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK));
  fd_teardown(&d);
}

static void test_vsock_transport_reset(struct evloop *loop) {
  char err[256], path[108], path2[108];
  snprintf(path, sizeof path, "/tmp/persist_test.%d.sock", getpid());
  snprintf(path2, sizeof path2, "/tmp/persist_test.%d.2.sock", getpid());
  struct fake_driver d;
  fd_setup(&d, MEM_SIZE, loop);
  d.dev = virtio_vsock_create(&d.env, 3, path, err, sizeof err);
  CHECK(d.dev);
  CHECK(fd_init(&d, V1, QN) & VIRTIO_CONFIG_S_FEATURES_OK);
  uint64_t ev = fd_alloc(&d, 4, 4);
  *(uint32_t *)fd_ptr(&d, ev) = 0xdeadbeef;
  struct fd_buf b = {ev, 4, true};
  CHECK(fd_add(&d, VSOCK_QUEUE_EVENT, &b, 1) >= 0);
  fd_kick(&d, VSOCK_QUEUE_EVENT);
  uint32_t id, len;
  CHECK(!fd_used(&d, VSOCK_QUEUE_EVENT, &id, &len)); /* the device holds event buffers until it has news */

  /* Through the device's own save/restore (virtio_device_ops): restore itself sends TRANSPORT_RESET. */
  struct virtio_dev_state st, st2;
  struct vsock_state own, own2;
  pthread_mutex_lock(&d.dev->lock);
  d.dev->ops->save(d.dev, &st, &own);
  pthread_mutex_unlock(&d.dev->lock);
  CHECK(d.dev->ops->state_len == sizeof own && own.next_host_port == 1u << 30); /* nothing connected yet */
  struct virtio_mmio_dev *fresh = virtio_vsock_create(&d.env, 4, path2, err, sizeof err);
  CHECK(fresh);
  virtio_mmio_destroy(d.dev);
  d.dev = fresh;
  fd_irqs(&d);
  pthread_mutex_lock(&fresh->lock);
  own2 = own;
  own2.next_host_port += 7;
  CHECK(fresh->ops->restore(fresh, &st, &own2, err, sizeof err) == 0);
  fresh->ops->save(fresh, &st2, &own);
  pthread_mutex_unlock(&fresh->lock);
  CHECK(own.next_host_port == (1u << 30) + 7);
  CHECK(fd_used(&d, VSOCK_QUEUE_EVENT, &id, &len) && len == 4);
  CHECK(*(uint32_t *)fd_ptr(&d, ev) == 0); /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
  CHECK(fd_irqs(&d) >= 1);
  /* No event buffer left: reported, not invented. */
  CHECK(virtio_vsock_transport_reset(fresh) < 0);
  /* A port out of the host-port range comes back as its start (an event buffer for that restore's reset). */
  CHECK(fd_add(&d, VSOCK_QUEUE_EVENT, &b, 1) >= 0);
  own2.next_host_port = 5;
  pthread_mutex_lock(&fresh->lock);
  CHECK(fresh->ops->restore(fresh, &st2, &own2, err, sizeof err) == 0);
  fresh->ops->save(fresh, &st2, &own);
  pthread_mutex_unlock(&fresh->lock);
  CHECK(own.next_host_port == 1u << 30);
  fd_teardown(&d);
}

int main(void) {
  test_rng_round_trip(false);
  test_rng_round_trip(true);
  test_restore_before_features_ok();
  struct evloop *loop = evloop_create();
  CHECK(loop && evloop_start(loop) == 0);
  test_vsock_transport_reset(loop);
  evloop_destroy(loop);
  if (failed_count) return 1;
  printf("virtio_persist_test: ok\n");
  return 0;
}
