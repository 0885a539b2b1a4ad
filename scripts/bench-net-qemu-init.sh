#!/bin/busybox sh
# /init of bench:net's QEMU baseline guest (scripts/bench-net-qemu.ts): loads the initramfs's modules, configures eth0,
# chroots into the base image (/dev/vda, read-only) and runs the same curl workload as the onebox sandbox; prints
# BENCH-SPEED <bytes/s> and BENCH-RTT <s> lines on the console, then powers off. Parameters: bench.* on /proc/cmdline.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^bench\.$1=//p"; }
while read -r m; do insmod "/lib/modules/onebox/$m" || echo "BENCH-ERROR insmod $m"; done </lib/modules/onebox/load.list
ip link set lo up
ip addr add "$(arg ip)" dev eth0
ip link set eth0 up
ip route add default via "$(arg gw)"
mount -t ext4 -o ro,noload /dev/vda /newroot || echo "BENCH-ERROR mount /dev/vda"
mount -t proc proc /newroot/proc
mount -t devtmpfs dev /newroot/dev
big=$(arg big) small=$(arg small)
# eth0's counters: interrupts of its virtio device (all its MSI-X vectors), rx frames, rx bytes, tx frames. The same
# one-liner as NETSTAT in scripts/bench-net.ts, so both guests are counted alike.
netstat() {
  d=$(basename "$(readlink /sys/class/net/eth0/device)")
  echo "$(awk -v d="$d" '$NF == d || index($NF, d "-") == 1 {s += $2} END {print s + 0}' /proc/interrupts)" \
    $(cat /sys/class/net/eth0/statistics/rx_packets /sys/class/net/eth0/statistics/rx_bytes /sys/class/net/eth0/statistics/tx_packets)
}
echo
chroot /newroot curl -sS -o /dev/null "$small" || echo "BENCH-ERROR curl $small" # ARP, page cache: as the sandbox's first request
echo "BENCH-NETSTAT $(netstat)"
chroot /newroot curl -sS -o /dev/null "$big" || echo "BENCH-ERROR curl $big" # one untimed download, as in the sandbox
echo "BENCH-NETSTAT $(netstat)"
for i in $(seq "$(arg fetches)"); do
  echo "BENCH-SPEED $(chroot /newroot curl -sS -o /dev/null -w '%{speed_download}' "$big")"
done
for i in $(seq "$(arg requests)"); do
  echo "BENCH-RTT $(chroot /newroot curl -sS -o /dev/null -w '%{time_total}' "$small")"
done
sync
poweroff -f
