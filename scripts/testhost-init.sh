#!/bin/sh
# PID 1 of the test host (busybox sh in its initramfs): loads the drivers and KVM, mounts the Debian
# root (vda) and the repository image (vdb), runs the command from fw_cfg in a chroot, reports its
# status on a virtio-serial port and powers off. Written for scripts/testhost; not run elsewhere.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

fail() {
  echo "testhost-init: $*" >/dev/console
  # The status port may not exist yet; the host then reports a failed boot with the console.
  [ -n "${status_port:-}" ] && echo "fail $*" >"$status_port"
  poweroff -f
}

# Modules in dependency order (written by scripts/testhost from modules.dep).
while read -r m; do
  insmod "/modules/$m" 2>/dev/null || fail "insmod $m failed"
done </modules/load-order

# virtio-serial ports appear asynchronously; find them by name (no udev here).
port() {
  for p in /sys/class/virtio-ports/vport*; do
    [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
  done
  return 1
}
i=0
while ! status_port=$(port onebox.status) || ! out_port=$(port onebox.out) \
      || ! err_port=$(port onebox.err) || [ ! -b /dev/vdb ]; do
  i=$((i + 1)); [ $i -gt 500 ] && fail "devices did not appear (virtio-serial ports, /dev/vda, /dev/vdb)"
  sleep 0.02
done
[ -c /dev/kvm ] || fail "/dev/kvm did not appear after loading kvm-amd"

R=/newroot
mkdir -p $R
mount -t ext4 /dev/vda $R || fail "cannot mount the root filesystem (vda)"
mkdir -p $R/repo
mount -t ext4 /dev/vdb $R/repo || fail "cannot mount the repository image (vdb)"
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/tmp
mount -t tmpfs tmpfs $R/run
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
ip link set lo up

# Opt-in extras, asked for on the kernel command line by scripts/testhost (--disk, --net).
case " $(cat /proc/cmdline) " in
  *" onebox.grow=1 "*)
    # The root is a larger qcow2 overlay of the cached image: grow the ext4 into it (online).
    chroot $R resize2fs /dev/vda >/dev/console 2>&1 || fail "resize2fs /dev/vda failed" ;;
esac
case " $(cat /proc/cmdline) " in
  *" onebox.net=1 "*)
    # QEMU user networking (slirp): fixed addresses, no DHCP client needed.
    while read -r m; do
      insmod "/modules/$m" 2>/dev/null || fail "insmod $m failed"
    done </modules/load-order-net
    i=0
    while [ ! -e /sys/class/net/eth0 ]; do
      i=$((i + 1)); [ $i -gt 500 ] && fail "eth0 did not appear (virtio-net)"
      sleep 0.02
    done
    # What udev gives a full machine and devtmpfs lacks: bash's process substitution (<(...),
    # used by scripts/mkrootfs.sh) needs /dev/fd. Only here, so default runs stay as CI knows them.
    ln -s /proc/self/fd $R/dev/fd
    ln -s /proc/self/fd/0 $R/dev/stdin
    ln -s /proc/self/fd/1 $R/dev/stdout
    ln -s /proc/self/fd/2 $R/dev/stderr
    ip link set eth0 up || fail "ip link set eth0 up failed"
    ip addr add 10.0.2.15/24 dev eth0 || fail "ip addr add failed"
    ip route add default via 10.0.2.2 || fail "ip route add default failed"
    rm -f $R/etc/resolv.conf
    echo "nameserver 10.0.2.3" >$R/etc/resolv.conf
    # The outer machine's CA bundle (scripts/testhost), also as a local CA so that a later
    # update-ca-certificates (an apt trigger) keeps it.
    ca=/sys/firmware/qemu_fw_cfg/by_name/opt/onebox/ca-bundle/raw
    if [ -r $ca ]; then
      mkdir -p $R/usr/local/share/ca-certificates $R/etc/ssl/certs
      cp $ca $R/usr/local/share/ca-certificates/testhost-outer-bundle.crt
      cp $ca $R/etc/ssl/certs/ca-certificates.crt
      chmod 644 $R/usr/local/share/ca-certificates/testhost-outer-bundle.crt $R/etc/ssl/certs/ca-certificates.crt
    fi ;;
esac

cmd=/sys/firmware/qemu_fw_cfg/by_name/opt/onebox/cmd/raw
[ -r $cmd ] || fail "no command in fw_cfg (opt/onebox/cmd)"
cp $cmd $R/run/testhost-cmd.sh
hostname onebox-testhost

echo "testhost-init: running the command" >/dev/console
# Heartbeat on the console: when a run stalls, the console tail tells a live test host (a stuck
# process; scripts/e2e-run-files.sh dumps its state) from a frozen one (no heartbeats).
# scripts/testhost --stall S kills a run whose console has been silent for S seconds.
( while sleep 60; do
    echo "testhost-init: alive $(cut -d' ' -f1 /proc/uptime) s, load $(cut -d' ' -f1-3 /proc/loadavg), $(grep MemAvailable /proc/meminfo | tr -s ' ')" >/dev/console
  done ) &
heartbeat=$!
chroot $R /bin/bash /run/testhost-cmd.sh >"$out_port" 2>"$err_port" </dev/null
rc=$?
kill $heartbeat 2>/dev/null
echo "exit $rc" >"$status_port"
sync
umount $R/repo 2>/dev/null
poweroff -f
