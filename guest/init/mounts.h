// Filesystems of PID 1: the API mounts, the overlay root of two ext4 disks, the switch into it.
#pragma once

/* mounts_api mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /tmp, /run and
 * /sys/fs/cgroup (cgroup2); returns the number of failures. */
int mounts_api(void);
/* mounts_wait_dev waits up to ms for a block device node to appear; 0 when it exists. */
int mounts_wait_dev(const char *dev, int ms);
/* mounts_overlay_root mounts lower (ro ext4) and layer (rw ext4, upper/ and work/ created on
 * first boot) as an overlay at /newroot, moves the API mounts into it and switches root
 * (MS_MOVE + chroot). Returns 0, or -1 (logged) leaving the initramfs root in place. */
int mounts_overlay_root(const char *lower, const char *layer);
