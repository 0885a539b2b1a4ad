// Diff snapshots (docs/snapshot.md "Diff snapshots"): a VM restored from snapshot BASE saves only the pages it
// changed since (its private copy-on-write pages, found in /proc/self/pagemap) and restores as BASE/memory mapped
// MAP_PRIVATE with those pages mapped over it. A diff of a diff is flattened: it references the same BASE.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "guest_mem.h"

#define SNAP_DIFF_MAX_RUNS 16384u /* each run is one mapping at restore; more and the pause writes a full snapshot */
#define SNAP_DIFF_PATH_MAX 4096u

/* SNAP_SEC_DIFF_BASE: which BASE/memory the diff lies over, and that file's identity when the diff was taken. */
struct snap_diff_base {
  uint64_t dev, ino, size, mtime_ns;
  uint32_t path_len, reserved; /* path: the base snapshot directory, absolute, NUL-terminated within path_len */
  char path[SNAP_DIFF_PATH_MAX];
};

/* SNAP_SEC_DIFF_RUNS is an array of these: guest pages [first_page, first_page + npages) come from DIR/memory. */
struct snap_diff_run {
  uint32_t first_page, npages;
};

/* Fills b from the base directory (absolute) and its memory file's stat. */
int snap_diff_base_set(struct snap_diff_base *b, const char *dir, const struct stat *mem_st);
/* 0 if the base memory file is still the one the diff was taken over, else -1 with a reason in err. */
int snap_diff_base_check(const struct snap_diff_base *b, const struct stat *mem_st, char *err, size_t errlen);
/* Checks a run list read from disk: 1..SNAP_DIFF_MAX_RUNS runs, each non-empty, ascending, not overlapping,
 * inside mem_pages. 0 or -1 with err. */
int snap_diff_runs_check(const struct snap_diff_run *runs, size_t n, uint64_t mem_pages, char *err, size_t errlen);
/* Turns a page bitmap into runs; returns the number of runs, or SNAP_DIFF_MAX_RUNS + 1 if there would be more. */
size_t snap_diff_runs_from_bitmap(const uint64_t *bitmap, uint64_t npages, struct snap_diff_run *runs);

/* Maps diff_fd's pages over mem for every run (MAP_PRIVATE | MAP_FIXED): lazily read, shared between clones. */
int snap_diff_overlay(const struct guest_mem *mem, int diff_fd, const struct snap_diff_run *runs, size_t n, char *err,
                      size_t errlen);

/* Called by restore (before seccomp): remembers the base and the pages already taken from a parent diff, and opens
 * /proc/self/pagemap, so that a later `snapshot-diff` can tell which pages this clone wrote. */
int snap_diff_track(const struct snap_diff_base *base, const struct snap_diff_run *runs, size_t n, uint64_t mem_bytes,
                    char *err, size_t errlen);
/* The base of this process's memory, or NULL if it was not restored from a snapshot. */
const struct snap_diff_base *snap_diff_tracked_base(void);
/* Sets a bit in bitmap (mem->size / 4096 bits, zeroed by the caller) for every page that differs from the base:
 * the parent diff's pages and every page private to this process (written since restore). 0 or -1 with err. */
int snap_diff_dirty_pages(const struct guest_mem *mem, uint64_t *bitmap, char *err, size_t errlen);
