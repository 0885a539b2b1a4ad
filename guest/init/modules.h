// Loads the kernel modules shipped in the initramfs, in the order mkinitramfs.sh wrote.
#pragma once

#define MODULES_DIR "/lib/modules/onebox"
#define MODULES_LIST MODULES_DIR "/load.list"

/* modules_load_all loads every module named in MODULES_LIST with finit_module, passing the
 * "<module>.<param>=" entries of cmdline; returns the number of failures. */
int modules_load_all(const char *cmdline, unsigned long cmdline_len);
/* modules_free removes the module files (the initramfs is RAM the guest keeps otherwise). */
void modules_free(void);
