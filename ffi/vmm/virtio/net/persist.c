// virtio-net snapshot: transport + the guest's MAC. No frame is in flight between locked sections (a frame waiting
// for rx buffers is dropped, as a full TAP queue would); the clone reads its own TAP from where the rings are.
#include <string.h>
#include "net.h"

void net_save(struct virtio_mmio_dev *dev, struct virtio_dev_state *transport, void *own) {
  virtio_dev_save(dev, transport);
  struct net_state st = {0};
  memcpy(st.mac, ((struct net *)dev->impl)->mac, 6);
  memcpy(own, &st, sizeof st);
}

int net_restore(struct virtio_mmio_dev *dev, const struct virtio_dev_state *transport, const void *own, char *err,
                size_t errlen) {
  if (virtio_dev_restore(dev, transport, err, errlen) < 0) return -1;
  struct net_state st;
  memcpy(&st, own, sizeof st);
  /* The guest's driver read its MAC at probe: every clone keeps the snapshot's (the command line's is for boot). */
  net_set_mac(dev, st.mac);
  ((struct net *)dev->impl)->pending_len = 0;
  net_resume(dev);
  return 0;
}
