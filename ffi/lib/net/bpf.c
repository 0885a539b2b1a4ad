// The eBPF translation programs through libbpf: load (embedded skeleton), pin and re-adopt the maps, attach with
// tc clsact (Debian 6.1 has no TCX), per-slot config, and BPF_PROG_TEST_RUN for the tests.
#include <errno.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "net.h"
#include "onebox_net.skel.h"

static __thread char last_error[512];

void onebox_net_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
}

int onebox_net_error(char *buf, int len) {
  if (len <= 0) return 0;
  snprintf(buf, len, "%s", last_error);
  return (int)strlen(buf);
}

int onebox_net_abi_version(void) { return ONEBOX_NET_ABI_VERSION; }

/* libbpf's warnings become the last error (its debug chatter is dropped): the daemon shows them on failure. */
static int on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  size_t n = strlen(last_error);
  if (n && last_error[n - 1] == '\n') last_error[n - 1] = 0;
  return 0;
}

struct onebox_bpf {
  struct onebox_net *skel;
};

int onebox_bpffs_ensure(const char *root, const char *dir) {
  struct statfs st;
  if (statfs(root, &st) < 0 || st.f_type != BPF_FS_MAGIC) {
    mkdir(root, 0700);
    if (mount("bpf", root, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0) {
      int e = errno;
      onebox_net_set_error("mount bpffs on %s: %s", root, strerror(e));
      return -e;
    }
  }
  if (dir && mkdir(dir, 0700) < 0 && errno != EEXIST) {
    int e = errno;
    onebox_net_set_error("mkdir %s: %s", dir, strerror(e));
    return -e;
  }
  return 0;
}

static int pin_path(char *out, size_t len, const char *dir, const struct bpf_map *m) {
  int n = snprintf(out, len, "%s/%s", dir, bpf_map__name(m));
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

onebox_bpf *onebox_bpf_open(const char *pin_dir, int *err) {
  libbpf_set_print(on_libbpf_print);
  last_error[0] = 0;
  struct onebox_net *skel = onebox_net__open();
  if (!skel) {
    *err = -errno;
    return NULL;
  }
  int e = 0;
  if (pin_dir) {
    /* A pinned map of the same shape is reused (the slots of a running daemon's sandboxes), else made and pinned. */
    struct bpf_map *maps[] = {skel->maps.onebox_slots,     skel->maps.onebox_drops,     skel->maps.onebox_slot_drops,
                              skel->maps.onebox_host_deny, skel->maps.onebox_open,      skel->maps.onebox_allow_out,
                              skel->maps.onebox_deny_out};
    for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) {
      char path[256];
      if ((e = pin_path(path, sizeof path, pin_dir, maps[i])) || (e = bpf_map__set_pin_path(maps[i], path))) goto fail;
    }
  }
  if ((e = onebox_net__load(skel))) goto fail;
  onebox_bpf *b = calloc(1, sizeof *b);
  if (!b) {
    e = -ENOMEM;
    goto fail;
  }
  b->skel = skel;
  *err = 0;
  return b;
fail:
  onebox_net__destroy(skel);
  *err = e < 0 ? e : -e;
  return NULL;
}

void onebox_bpf_close(onebox_bpf *b) {
  if (!b) return;
  onebox_net__destroy(b->skel);
  free(b);
}

int onebox_bpf_unpin(const char *pin_dir) {
  const char *names[] = {"onebox_slots",    "onebox_drops",     "onebox_slot_drops", "onebox_host_deny",
                         "onebox_open",     "onebox_allow_out", "onebox_deny_out"};
  int e = 0;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", pin_dir, names[i]);
    if (unlink(path) < 0 && errno != ENOENT) e = -errno;
  }
  if (rmdir(pin_dir) < 0 && errno != ENOENT && !e) e = -errno;
  return e;
}

static int attach_one(int ifindex, enum bpf_tc_attach_point where, int prog_fd) {
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
  return bpf_tc_attach(&hook, &opts);
}

int onebox_bpf_attach(onebox_bpf *b, int ifindex) {
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
  int e = bpf_tc_hook_create(&hook); /* the clsact qdisc */
  if (e && e != -EEXIST) return e;
  if ((e = attach_one(ifindex, BPF_TC_INGRESS, bpf_program__fd(b->skel->progs.onebox_from_guest)))) return e;
  return attach_one(ifindex, BPF_TC_EGRESS, bpf_program__fd(b->skel->progs.onebox_to_guest));
}

int onebox_bpf_detach(int ifindex) {
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
  return bpf_tc_hook_destroy(&hook);
}

/* 1 if the program at (ifindex, where, handle 1, priority 1) is named `name`. */
static int has_prog(int ifindex, enum bpf_tc_attach_point where, const char *name) {
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = 1);
  if (bpf_tc_query(&hook, &opts)) return 0;
  int fd = bpf_prog_get_fd_by_id(opts.prog_id);
  if (fd < 0) return 0;
  struct bpf_prog_info info = {0};
  __u32 len = sizeof info;
  int ok = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && strncmp(info.name, name, sizeof info.name - 1) == 0;
  close(fd);
  return ok;
}

int onebox_bpf_attached(int ifindex) {
  return has_prog(ifindex, BPF_TC_INGRESS, "onebox_from_guest") && has_prog(ifindex, BPF_TC_EGRESS, "onebox_to_guest");
}

int onebox_bpf_slot_set(onebox_bpf *b, uint32_t ifindex, const struct onebox_slot_cfg *cfg) {
  return bpf_map__update_elem(b->skel->maps.onebox_slots, &ifindex, sizeof ifindex, cfg, sizeof *cfg, BPF_ANY);
}

int onebox_bpf_slot_get(onebox_bpf *b, uint32_t ifindex, struct onebox_slot_cfg *cfg) {
  return bpf_map__lookup_elem(b->skel->maps.onebox_slots, &ifindex, sizeof ifindex, cfg, sizeof *cfg, 0);
}

int onebox_bpf_slot_del(onebox_bpf *b, uint32_t ifindex) {
  return bpf_map__delete_elem(b->skel->maps.onebox_slots, &ifindex, sizeof ifindex, 0);
}

int onebox_bpf_slot_keys(onebox_bpf *b, uint32_t *keys, int n) {
  int fd = bpf_map__fd(b->skel->maps.onebox_slots), count = 0;
  uint32_t key, next;
  uint32_t *prev = NULL;
  while (count < n && bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys[count++] = next;
    key = next;
    prev = &key;
  }
  return count;
}

int onebox_bpf_drops(onebox_bpf *b, uint64_t *out, int n) {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ncpu ? ncpu : -EINVAL;
  if (n > ONEBOX_DROP_MAX) n = ONEBOX_DROP_MAX;
  uint64_t *per = calloc(ncpu, sizeof *per);
  if (!per) return -ENOMEM;
  int fd = bpf_map__fd(b->skel->maps.onebox_drops);
  for (int i = 0; i < n; i++) {
    uint32_t key = i;
    out[i] = 0;
    if (bpf_map_lookup_elem(fd, &key, per) == 0)
      for (int c = 0; c < ncpu; c++) out[i] += per[c];
  }
  free(per);
  return n;
}

int onebox_bpf_test_run(onebox_bpf *b, int which, int ifindex, const uint8_t *in, int in_len, uint8_t *out,
                        int out_cap, int32_t *out_meta) {
  struct bpf_program *p = which == 0 ? b->skel->progs.onebox_from_guest : b->skel->progs.onebox_to_guest;
  struct __sk_buff ctx = {.ifindex = (uint32_t)ifindex};
  DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = in_len, .data_out = out,
                      .data_size_out = out_cap, .ctx_in = &ctx, .ctx_size_in = sizeof ctx, .ctx_out = &ctx,
                      .ctx_size_out = sizeof ctx, .repeat = 1);
  int e = bpf_prog_test_run_opts(bpf_program__fd(p), &opts);
  if (e) return e;
  out_meta[0] = (int32_t)opts.retval;
  out_meta[1] = (int32_t)opts.data_size_out;
  out_meta[2] = (int32_t)ctx.mark; /* the name proxy's mark (ONEBOX_PROXY_MARK) */
  return 0;
}

int onebox_bpf_map_fd(onebox_bpf *b, const char *name) {
  struct bpf_map *m = bpf_object__find_map_by_name(b->skel->obj, name);
  if (!m) {
    onebox_net_set_error("no map named %s", name);
    return -ENOENT;
  }
  return bpf_map__fd(m);
}

/* libbpf 1.x returns -errno from these. */
int onebox_bpf_map_update(int fd, const void *key, const void *value, uint64_t flags) {
  return bpf_map_update_elem(fd, key, value, flags);
}

int onebox_bpf_map_lookup(int fd, const void *key, void *value) { return bpf_map_lookup_elem(fd, key, value); }

int onebox_bpf_map_delete(int fd, const void *key) { return bpf_map_delete_elem(fd, key); }

int onebox_bpf_map_next_key(int fd, const void *key, void *next) { return bpf_map_get_next_key(fd, key, next); }

int onebox_bpf_ncpu(void) { return libbpf_num_possible_cpus(); }
