// Diff snapshots: base identity, run lists, the copy-on-write overlay at restore and dirty pages from pagemap.
#include "snapshot/diff.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096u
/* /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE_OR_SHARED_ANON (1ull << 61)

int snap_diff_base_set(struct snap_diff_base *b, const char *dir, const struct stat *mem_st) {
  memset(b, 0, sizeof *b);
  size_t n = strlen(dir);
  if (dir[0] != '/' || n >= SNAP_DIFF_PATH_MAX) return -1;
  memcpy(b->path, dir, n);
  b->path_len = (uint32_t)n + 1;
  b->dev = mem_st->st_dev;
  b->ino = mem_st->st_ino;
  b->size = (uint64_t)mem_st->st_size;
  b->mtime_ns = (uint64_t)mem_st->st_mtim.tv_sec * 1000000000ull + (uint64_t)mem_st->st_mtim.tv_nsec;
  return 0;
}

int snap_diff_base_check(const struct snap_diff_base *b, const struct stat *st, char *err, size_t errlen) {
  uint64_t mtime = (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
  if (b->dev == st->st_dev && b->ino == st->st_ino && b->size == (uint64_t)st->st_size && b->mtime_ns == mtime)
    return 0;
  snprintf(err, errlen,
           "the base snapshot %s changed since this diff was taken (its memory file is not the same file: device, "
           "inode, size or mtime differ): restore needs the exact base it was paused over",
           b->path);
  return -1;
}

int snap_diff_runs_check(const struct snap_diff_run *runs, size_t n, uint64_t mem_pages, char *err, size_t errlen) {
  if (n < 1 || n > SNAP_DIFF_MAX_RUNS) {
    snprintf(err, errlen, "diff snapshot has %zu page runs (1..%u)", n, SNAP_DIFF_MAX_RUNS);
    return -1;
  }
  uint64_t next = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t first = runs[i].first_page, end = first + runs[i].npages;
    if (runs[i].npages == 0 || first < next || end > mem_pages) {
      snprintf(err, errlen, "diff snapshot page run %zu (%llu+%u) is empty, out of order or outside memory", i,
               (unsigned long long)first, runs[i].npages);
      return -1;
    }
    next = end;
  }
  return 0;
}

size_t snap_diff_runs_from_bitmap(const uint64_t *bitmap, uint64_t npages, struct snap_diff_run *runs) {
  size_t n = 0;
  for (uint64_t p = 0; p < npages;) {
    if (!bitmap[p / 64]) {
      p = (p / 64 + 1) * 64;
      continue;
    }
    if (!(bitmap[p / 64] >> (p % 64) & 1)) {
      p++;
      continue;
    }
    uint64_t q = p;
    while (q < npages && (bitmap[q / 64] >> (q % 64) & 1)) q++;
    if (n == SNAP_DIFF_MAX_RUNS) return SNAP_DIFF_MAX_RUNS + 1;
    runs[n++] = (struct snap_diff_run){.first_page = (uint32_t)p, .npages = (uint32_t)(q - p)};
    p = q;
  }
  return n;
}

int snap_diff_overlay(const struct guest_mem *mem, int diff_fd, const struct snap_diff_run *runs, size_t n, char *err,
                      size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    uint64_t off = (uint64_t)runs[i].first_page * PAGE, len = (uint64_t)runs[i].npages * PAGE;
    void *at = mmap(mem->host + off, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, diff_fd,
                    (off_t)off);
    if (at == MAP_FAILED) {
      snprintf(err, errlen, "mmap diff pages %llu+%u: %s", (unsigned long long)runs[i].first_page, runs[i].npages,
               strerror(errno));
      return -1;
    }
  }
  return 0;
}

/* One VM per process: what restore learned about the base, kept for a later snapshot-diff. */
static struct {
  bool on;
  struct snap_diff_base base;
  int pagemap_fd, pagemap_errno;
  uint64_t *parent; /* bitmap: pages mapped from the parent diff (not private, yet not the base's) */
  uint64_t npages;
} track = {.pagemap_fd = -1};

int snap_diff_track(const struct snap_diff_base *base, const struct snap_diff_run *runs, size_t n, uint64_t mem_bytes,
                    char *err, size_t errlen) {
  track.npages = mem_bytes / PAGE;
  track.parent = calloc((track.npages + 63) / 64, sizeof *track.parent);
  if (!track.parent) {
    snprintf(err, errlen, "out of memory for the diff bitmap");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    for (uint64_t p = runs[i].first_page; p < (uint64_t)runs[i].first_page + runs[i].npages; p++)
      track.parent[p / 64] |= 1ull << (p % 64);
  /* Not fatal: a vmm that already dropped to a jail uid is not dumpable, and /proc/self/pagemap is then root's. The
   * restore goes on; only a later snapshot-diff is refused (with this errno). */
  track.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  track.pagemap_errno = track.pagemap_fd < 0 ? errno : 0;
  track.base = *base;
  track.on = true;
  return 0;
}

const struct snap_diff_base *snap_diff_tracked_base(void) {
  return track.on ? &track.base : NULL;
}

int snap_diff_dirty_pages(const struct guest_mem *mem, uint64_t *bitmap, char *err, size_t errlen) {
  if (!track.on || mem->size / PAGE != track.npages) {
    snprintf(err, errlen, "this VM was not restored from a snapshot: take a full snapshot");
    return -1;
  }
  if (track.pagemap_fd < 0) {
    snprintf(err, errlen, "open /proc/self/pagemap at restore failed (%s): take a full snapshot",
             strerror(track.pagemap_errno));
    return -1;
  }
  static uint64_t ent[4096];
  uint64_t first = (uint64_t)(uintptr_t)mem->host / PAGE;
  for (uint64_t p = 0; p < track.npages; p += 4096) {
    uint64_t n = track.npages - p < 4096 ? track.npages - p : 4096;
    ssize_t got = pread(track.pagemap_fd, ent, n * 8, (off_t)((first + p) * 8));
    if (got != (ssize_t)(n * 8)) {
      snprintf(err, errlen, "read /proc/self/pagemap: %s", got < 0 ? strerror(errno) : "short read");
      return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
      /* Private = an anonymous copy made by a write fault, resident or swapped; file pages are the base's or the
       * parent diff's. */
      bool priv = (ent[i] & PM_SWAPPED) || ((ent[i] & PM_PRESENT) && !(ent[i] & PM_FILE_OR_SHARED_ANON));
      uint64_t q = p + i;
      if (priv || (track.parent[q / 64] >> (q % 64) & 1)) bitmap[q / 64] |= 1ull << (q % 64);
    }
  }
  return 0;
}
