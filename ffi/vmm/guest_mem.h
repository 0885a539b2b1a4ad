// Guest physical memory: one region from GPA 0, and the only safe way to turn a guest address into a pointer.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem {
  uint8_t *host;  /* mapping of guest physical address 0 */
  uint64_t size;  /* bytes; GPAs [0, size) are RAM */
};

/* Host pointer for guest range [gpa, gpa+len), or NULL if any byte of it lies outside RAM.
 * Overflow-safe: a guest can pass any 64-bit values. len 0 is valid when gpa <= size. */
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len) {
  if (gpa > m->size || len > m->size - gpa) return NULL;
  return m->host + gpa;
}
