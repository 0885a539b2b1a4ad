// Snapshot state file encoding and validation: everything read from disk is bounded before it is used.
#include "snapshot/format.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* SSE4.2's crc32 instruction computes exactly CRC32C, 8 bytes per instruction: checking a restore's state file
 * took ~70 µs bit by bit (bench:restore "validate"). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len) {
  uint64_t c = crc;
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    c = __builtin_ia32_crc32di(c, v);
  }
  uint32_t c32 = (uint32_t)c;
  while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as in iSCSI / ext4 metadata. */
uint32_t snap_crc32c(uint32_t crc, const void *data, size_t len) {
  const uint8_t *p = data;
  if (__builtin_cpu_supports("sse4.2")) return ~crc32c_sse42(~crc, p, len);
  crc = ~crc;
  while (len--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return ~crc;
}

/* Cached: the first call happens during setup, before seccomp forbids access(). */
enum snap_host_kind snap_host_kind(void) {
  static enum snap_host_kind kind;
  if (!kind) kind = access("/sys/module/kvm_pvm", F_OK) == 0 ? SNAP_HOST_PVM : SNAP_HOST_HARDWARE;
  return kind;
}

const char *snap_host_kind_name(uint32_t kind) {
  return kind == SNAP_HOST_PVM ? "pvm" : kind == SNAP_HOST_HARDWARE ? "hardware" : "unknown";
}

static void writer_put(struct snap_writer *w, const void *data, size_t len) {
  if (w->failed) return;
  if (w->len + len > SNAP_MAX_FILE) {
    w->failed = true;
    return;
  }
  if (w->len + len > w->cap) {
    size_t cap = w->cap ? w->cap : 65536;
    while (cap < w->len + len) cap *= 2;
    uint8_t *nb = realloc(w->buf, cap);
    if (!nb) {
      w->failed = true;
      return;
    }
    w->buf = nb;
    w->cap = cap;
  }
  memcpy(w->buf + w->len, data, len);
  w->len += len;
}

void snap_writer_init(struct snap_writer *w, uint32_t nvcpus, uint64_t mem_bytes, uint32_t host_kind) {
  memset(w, 0, sizeof *w);
  struct snap_header h = {.version = SNAP_VERSION, .host_kind = host_kind, .nvcpus = nvcpus, .mem_bytes = mem_bytes};
  memcpy(h.magic, SNAP_MAGIC, sizeof h.magic);
  writer_put(w, &h, sizeof h);
}

void snap_writer_add(struct snap_writer *w, uint16_t kind, uint16_t index, const void *data, size_t len) {
  if (len > SNAP_MAX_SECTION || w->nsections >= SNAP_MAX_SECTIONS) {
    w->failed = true;
    return;
  }
  struct snap_section_hdr s = {.kind = kind, .index = index, .len = (uint32_t)len};
  writer_put(w, &s, sizeof s);
  writer_put(w, data, len);
  w->nsections++;
}

void snap_writer_mark_diff(struct snap_writer *w) {
  if (!w->failed) ((struct snap_header *)w->buf)->version = SNAP_VERSION_DIFF;
}

const uint8_t *snap_writer_finish(struct snap_writer *w, size_t *len) {
  if (w->failed) return NULL;
  struct snap_header *h = (struct snap_header *)w->buf;
  h->nsections = w->nsections;
  h->crc32c = 0;
  h->crc32c = snap_crc32c(0, w->buf, w->len);
  *len = w->len;
  return w->buf;
}

void snap_writer_free(struct snap_writer *w) {
  free(w->buf);
  memset(w, 0, sizeof *w);
}

int snap_reader_open(struct snap_reader *r, uint8_t *buf, size_t len, uint32_t expect_host_kind, char *err,
                     size_t errlen) {
  memset(r, 0, sizeof *r);
  r->buf = buf;
  r->len = len;
  if (len < sizeof r->hdr || len > SNAP_MAX_FILE) {
    snprintf(err, errlen, "snapshot state is %zu bytes (truncated or not a snapshot)", len);
    return -1;
  }
  memcpy(&r->hdr, buf, sizeof r->hdr);
  if (memcmp(r->hdr.magic, SNAP_MAGIC, sizeof r->hdr.magic) != 0) {
    snprintf(err, errlen, "snapshot state has a bad magic (not an onebox snapshot)");
    return -1;
  }
  if (r->hdr.version != SNAP_VERSION && r->hdr.version != SNAP_VERSION_DIFF) {
    snprintf(err, errlen, "snapshot version %u, this vmm reads versions %u (full) and %u (diff)", r->hdr.version,
             SNAP_VERSION, SNAP_VERSION_DIFF);
    return -1;
  }
  uint32_t want = r->hdr.crc32c;
  ((struct snap_header *)buf)->crc32c = 0;
  uint32_t got = snap_crc32c(0, buf, len);
  ((struct snap_header *)buf)->crc32c = want;
  if (got != want) {
    snprintf(err, errlen, "snapshot state checksum mismatch (crc32c %08x, header says %08x): corrupted", got, want);
    return -1;
  }
  if (r->hdr.host_kind != expect_host_kind) {
    snprintf(err, errlen, "snapshot was taken on a %s KVM host, this host is %s: not restorable here",
             snap_host_kind_name(r->hdr.host_kind), snap_host_kind_name(expect_host_kind));
    return -1;
  }
  if (r->hdr.nsections > SNAP_MAX_SECTIONS) {
    snprintf(err, errlen, "snapshot has %u sections (cap %u)", r->hdr.nsections, SNAP_MAX_SECTIONS);
    return -1;
  }
  /* Walk once so that find() can trust every section header. */
  size_t off = sizeof r->hdr;
  for (uint32_t i = 0; i < r->hdr.nsections; i++) {
    struct snap_section_hdr s;
    if (len - off < sizeof s) goto bad;
    memcpy(&s, buf + off, sizeof s);
    off += sizeof s;
    if (s.len > SNAP_MAX_SECTION || s.len > len - off) goto bad;
    off += s.len;
  }
  if (off != len) goto bad;
  return 0;
bad:
  snprintf(err, errlen, "snapshot section table is inconsistent with the file length");
  return -1;
}

const void *snap_reader_find(const struct snap_reader *r, uint16_t kind, uint16_t index, size_t want_len, size_t *len) {
  size_t off = sizeof r->hdr;
  for (uint32_t i = 0; i < r->hdr.nsections; i++) {
    struct snap_section_hdr s;
    memcpy(&s, r->buf + off, sizeof s);
    off += sizeof s;
    if (s.kind == kind && s.index == index) {
      if (want_len && s.len != want_len) return NULL;
      if (len) *len = s.len;
      return r->buf + off;
    }
    off += s.len;
  }
  return NULL;
}

void snap_reader_free(struct snap_reader *r) {
  free(r->buf);
  memset(r, 0, sizeof *r);
}
