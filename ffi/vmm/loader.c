// Linux x86 boot protocol loader (Documentation/x86/boot.rst): bzImage setup header or ELF PT_LOADs, initrd, zero page.
#include "loader.h"
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "layout.h"

/* struct boot_params / struct setup_header offsets (arch/x86/include/uapi/asm/bootparam.h). */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1               /* setup_header starts here, in the file and in the zero page */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200             /* 2-byte jump; its second byte is the header length - 2 past 0x202 */
#define HDR_HEADER 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 4096
#define BOOT_FLAG_MAGIC 0xaa55
#define HDR_MAGIC 0x53726448       /* "HdrS" */
#define BOOT_PROTOCOL_MIN 0x020c   /* 2.12: xloadflags, the 64-bit entry */
#define LOADER_TYPE_UNDEFINED 0xff
#define LOADFLAGS_LOADED_HIGH 0x01
#define LOADFLAGS_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x1
#define STARTUP_64_OFFSET 0x200    /* 64-bit entry = protected-mode kernel + 0x200 */
#define SETUP_SECTS_DEFAULT 4
#define SECTOR 512
#define HEAP_END 0xfe00
#define KERNEL_ALIGNMENT_DEFAULT 0x1000000
#define E820_RAM 1
#define E820_RESERVED 2

static inline void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Reads a whole file into a malloc'd buffer (kernels and initrds are at most a few hundred MiB). */
static uint8_t *file_read_all(const char *path, uint64_t *size, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) {
    snprintf(err, errlen, "open %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return NULL;
  }
  uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
  uint64_t done = 0;
  while (buf && done < (uint64_t)st.st_size) {
    ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
    if (n <= 0) {
      snprintf(err, errlen, "read %s: %s", path, n < 0 ? strerror(errno) : "short read");
      free(buf);
      buf = NULL;
      break;
    }
    done += (uint64_t)n;
  }
  if (!buf && !err[0]) snprintf(err, errlen, "out of memory reading %s", path);
  close(fd);
  *size = done;
  return buf;
}

static int copy_to_guest(struct vm *vm, uint64_t gpa, const void *src, uint64_t len, const char *what, char *err,
                         size_t errlen) {
  void *dst = guest_mem_ptr(&vm->mem, gpa, len);
  if (!dst) {
    snprintf(err, errlen, "%s (%llu bytes at 0x%llx) does not fit in guest memory (%llu MiB): raise --mem-mib", what,
             (unsigned long long)len, (unsigned long long)gpa, (unsigned long long)(vm->mem.size >> 20));
    return -1;
  }
  memcpy(dst, src, len);
  return 0;
}

/* ELF vmlinux: PT_LOAD segments at their physical addresses; e_entry is the physical startup_64. */
static int load_elf(struct vm *vm, const uint8_t *img, uint64_t size, struct loader_result *out, char *err,
                    size_t errlen) {
  if (size < sizeof(Elf64_Ehdr)) goto bad;
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
  if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 || eh->e_phentsize != sizeof(Elf64_Phdr))
    goto bad;
  if (eh->e_phoff > size || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > size - eh->e_phoff) goto bad;
  for (int i = 0; i < eh->e_phnum; i++) {
    Elf64_Phdr ph;
    memcpy(&ph, img + eh->e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset || ph.p_filesz > ph.p_memsz) goto bad;
    uint8_t *dst = guest_mem_ptr(&vm->mem, ph.p_paddr, ph.p_memsz);
    if (!dst || ph.p_paddr < LAYOUT_HIGH_MEM) {
      snprintf(err, errlen, "ELF segment at 0x%llx (+%llu) is outside guest RAM: raise --mem-mib",
               (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
      return -1;
    }
    memcpy(dst, img + ph.p_offset, ph.p_filesz);
    memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
  }
  out->entry = eh->e_entry;
  return 0;
bad:
  snprintf(err, errlen, "not a valid x86_64 ELF kernel");
  return -1;
}

/* bzImage: the protected-mode kernel follows (setup_sects + 1) sectors; the setup header is copied into the
 * zero page as the protocol asks ("copy the header from the kernel image"). */
static int load_bzimage(struct vm *vm, const uint8_t *img, uint64_t size, uint8_t *bp, struct loader_result *out,
                        char *err, size_t errlen) {
  uint32_t setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : SETUP_SECTS_DEFAULT;
  uint64_t pm_offset = (uint64_t)(setup_sects + 1) * SECTOR;
  uint16_t version = get16(img + HDR_VERSION);
  if (version < BOOT_PROTOCOL_MIN || !(get16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
    snprintf(err, errlen, "kernel boot protocol %x.%02x has no 64-bit entry (need 2.12+ with XLF_KERNEL_64)",
             version >> 8, version & 0xff);
    return -1;
  }
  uint64_t hdr_end = HDR_HEADER + img[HDR_JUMP + 1];
  if (pm_offset >= size || hdr_end > BP_SIZE || hdr_end > size) {
    snprintf(err, errlen, "truncated bzImage");
    return -1;
  }
  memcpy(bp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);
  if (copy_to_guest(vm, LAYOUT_HIGH_MEM, img + pm_offset, size - pm_offset, "kernel", err, errlen) < 0) return -1;
  out->entry = LAYOUT_HIGH_MEM + STARTUP_64_OFFSET;
  return 0;
}

static void e820_add(uint8_t *bp, uint64_t addr, uint64_t len, uint32_t type) {
  uint8_t n = bp[BP_E820_ENTRIES];
  if (n >= BP_E820_MAX) return;
  uint8_t *e = bp + BP_E820_TABLE + (size_t)n * 20; /* struct boot_e820_entry: u64 addr, u64 size, u32 type */
  put64(e, addr);
  put64(e + 8, len);
  put32(e + 16, type);
  bp[BP_E820_ENTRIES] = n + 1;
}

int loader_load_linux(struct vm *vm, const char *kernel, const char *initrd, const char *cmdline, uint64_t acpi_rsdp,
                      struct loader_result *out, char *err, size_t errlen) {
  uint8_t *bp = guest_mem_ptr(&vm->mem, LAYOUT_BOOT_PARAMS, BP_SIZE);
  if (!bp || vm->mem.size < LAYOUT_MIN_MEM) {
    snprintf(err, errlen, "guest memory too small: need at least %llu MiB", LAYOUT_MIN_MEM >> 20);
    return -1;
  }
  memset(bp, 0, BP_SIZE);
  uint64_t size = 0;
  err[0] = 0;
  uint8_t *img = file_read_all(kernel, &size, err, errlen);
  if (!img) return -1;
  int rc;
  if (size >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0) {
    rc = load_elf(vm, img, size, out, err, errlen);
    /* No setup header in an ELF: fill in what the kernel reads (as Firecracker does). */
    put16(bp + HDR_BOOT_FLAG, BOOT_FLAG_MAGIC);
    put32(bp + HDR_HEADER, HDR_MAGIC);
    put32(bp + HDR_KERNEL_ALIGNMENT, KERNEL_ALIGNMENT_DEFAULT);
  } else if (size > HDR_CMDLINE_SIZE + 4 && get16(img + HDR_BOOT_FLAG) == BOOT_FLAG_MAGIC &&
             get32(img + HDR_HEADER) == HDR_MAGIC) {
    rc = load_bzimage(vm, img, size, bp, out, err, errlen);
  } else {
    snprintf(err, errlen, "%s is neither a bzImage nor an ELF vmlinux", kernel);
    rc = -1;
  }
  free(img);
  if (rc < 0) return -1;

  bp[HDR_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
  bp[HDR_LOADFLAGS] |= LOADFLAGS_LOADED_HIGH | LOADFLAGS_CAN_USE_HEAP;
  put16(bp + HDR_HEAP_END_PTR, HEAP_END);

  size_t cmdlen = strlen(cmdline);
  uint32_t cmd_max = get32(bp + HDR_CMDLINE_SIZE);
  if (cmd_max == 0 || cmd_max >= LAYOUT_CMDLINE_MAX) cmd_max = LAYOUT_CMDLINE_MAX - 1;
  if (cmdlen > cmd_max) {
    snprintf(err, errlen, "command line is %zu bytes, the kernel accepts %u", cmdlen, cmd_max);
    return -1;
  }
  if (copy_to_guest(vm, LAYOUT_CMDLINE, cmdline, cmdlen + 1, "command line", err, errlen) < 0) return -1;
  put32(bp + HDR_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);

  if (initrd) {
    uint8_t *rd = file_read_all(initrd, &size, err, errlen);
    if (!rd) return -1;
    /* Highest page-aligned spot below both the end of RAM and initrd_addr_max (boot.rst: "as high as possible"). */
    uint64_t max = get32(bp + HDR_INITRD_ADDR_MAX);
    if (max == 0) max = 0x37ffffff; /* the protocol's default for kernels that leave it 0 */
    uint64_t top = vm->mem.size < max + 1 ? vm->mem.size : max + 1;
    uint64_t addr = top > size ? ((top - size) & ~4095ULL) : 0;
    if (addr < LAYOUT_HIGH_MEM + (16ULL << 20) || size > UINT32_MAX) {
      free(rd);
      snprintf(err, errlen, "initrd of %llu bytes does not fit below 0x%llx: raise --mem-mib",
               (unsigned long long)size, (unsigned long long)top);
      return -1;
    }
    rc = copy_to_guest(vm, addr, rd, size, "initrd", err, errlen);
    free(rd);
    if (rc < 0) return -1;
    put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
    put32(bp + HDR_RAMDISK_SIZE, (uint32_t)size);
    put32(bp + BP_EXT_RAMDISK_IMAGE, 0);
    put32(bp + BP_EXT_RAMDISK_SIZE, 0);
  }

  /* e820: conventional memory, the legacy BIOS/ACPI area reserved, then RAM from 1 MiB. */
  e820_add(bp, 0, LAYOUT_EBDA, E820_RAM);
  e820_add(bp, LAYOUT_EBDA, LAYOUT_HIGH_MEM - LAYOUT_EBDA, E820_RESERVED);
  e820_add(bp, LAYOUT_HIGH_MEM, vm->mem.size - LAYOUT_HIGH_MEM, E820_RAM);
  if (acpi_rsdp) put64(bp + BP_ACPI_RSDP_ADDR, acpi_rsdp);
  out->boot_params = LAYOUT_BOOT_PARAMS;
  return 0;
}

int loader_load_flat(struct vm *vm, const char *path, struct loader_result *out, char *err, size_t errlen) {
  uint64_t size = 0;
  err[0] = 0;
  uint8_t *img = file_read_all(path, &size, err, errlen);
  if (!img) return -1;
  int rc = copy_to_guest(vm, LAYOUT_HIGH_MEM, img, size, "test guest", err, errlen);
  free(img);
  out->entry = LAYOUT_HIGH_MEM;
  out->boot_params = 0;
  return rc;
}
