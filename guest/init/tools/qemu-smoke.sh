#!/usr/bin/env bash
# Boots onebox-init's test modes under QEMU (q35 + KVM + vhost-vsock) and checks them: the
# guest side tested on its own, without onebox's VMM. Run it in the test host:
#   scripts/testhost run 'guest/init/tools/qemu-smoke.sh'
# Needs /dev/kvm, the vhost_vsock module, ONEBOX_TEST_KERNEL and ONEBOX_TEST_MODULES (set there).
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${ONEBOX_TEST_KERNEL:?set by the test host}" "${ONEBOX_TEST_MODULES:?set by the test host}"

work=$(mktemp -d)
qpid=""
cleanup() { [ -n "$qpid" ] && kill "$qpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
pass=0 fail=0
check() { # check NAME COMMAND...: runs the command, records PASS/FAIL
  local name=$1; shift
  if "$@"; then echo "PASS $name"; pass=$((pass + 1)); else echo "FAIL $name"; fail=$((fail + 1)); fi
}

make -s -C guest/init all tools
modprobe vhost_vsock
scripts/mkinitramfs.sh --modules "$ONEBOX_TEST_MODULES" --out "$work/initrd.gz" --add-module virtio_pci 2>/dev/null
V=guest/init/build/vsock-cat
CID=3

# boot_guest MODE EXTRA_QEMU_ARGS...: starts QEMU in the background, console in $work/MODE.log.
boot_guest() {
  local mode=$1; shift
  : >"$work/$mode.log"
  qemu-system-x86_64 -M q35 -accel kvm -cpu host -m 256 -smp 1 -nographic -nodefaults -no-reboot \
    -serial "file:$work/$mode.log" -kernel "$ONEBOX_TEST_KERNEL" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 reboot=k panic=-1 quiet onebox.test=$mode $EXTRA_CMDLINE" "$@" &
  qpid=$!
}
# wait_exit SECONDS: waits for QEMU to end (the guest powered off or reset: status 0 with
# -no-reboot); fails on a timeout or when QEMU itself failed.
wait_exit() {
  local i rc
  for ((i = 0; i < $1 * 5; i++)); do
    if ! kill -0 "$qpid" 2>/dev/null; then
      rc=0; wait "$qpid" || rc=$?
      qpid=""
      return "$rc"
    fi
    sleep 0.2
  done
  return 1
}
console_has() { tr -d '\r' <"$work/$1.log" | grep -qF -- "$2"; }

EXTRA_CMDLINE=""
boot_guest boot
check "boot: powers off" wait_exit 120
check "boot: booted marker" console_has boot "ONEBOX-INIT: booted"

boot_guest panic
check "panic: guest resets" wait_exit 120
check "panic: kernel panic on the console" console_has panic "Kernel panic - not syncing: sysrq triggered crash"

truncate -s 80M "$work/disk.img"
EXTRA_CMDLINE="onebox.seed=0x1234"
boot_guest blk -drive "file=$work/disk.img,if=virtio,format=raw"
check "blk: powers off" wait_exit 300
want=$(bun -e 'import { blkTestPattern } from "./guest/protocol.ts";
  console.log(new Bun.CryptoHasher("sha256").update(blkTestPattern(0x1234n, 64 << 20)).digest("hex"))')
check "blk: guest hash = expected pattern hash" console_has blk "ONEBOX-TEST: blk sha256=$want"
check "blk: disk holds the pattern" test "$(head -c 64M "$work/disk.img" | sha256sum | cut -c1-64)" = "$want"

EXTRA_CMDLINE=""
boot_guest echo -device "vhost-vsock-pci,guest-cid=$CID"
for _ in $(seq 1 600); do console_has echo "echo: listening" && break; sleep 0.2; done
sleep 1 # the forwarder and control children start right after the echo child
check "echo: vsock" test "$(printf 'hello-vsock' | $V $CID 5000)" = "hello-vsock"
check "forwarder: OK + bytes both ways" test "$(printf 'TCP 5000\nhello-tcp' | $V $CID 1024)" = "$(printf 'OK\nhello-tcp')"
check "forwarder: refused port" test "$(printf 'TCP 6000\n' | $V $CID 1024)" = "ERR connect 127.0.0.1:6000: Connection refused"
check "forwarder: bad line" test "$(printf 'HELLO\n' | $V $CID 1024)" = "ERR bad request: expected TCP <port>"
entropy=$(head -c 64 /dev/urandom | base64 -w0)
check "control: hygiene" test "$(printf '{"op":"hygiene","time_ns":1900000000000000000,"entropy":"%s","id":"sbx_smoke","hostname":"clone-1"}\n' "$entropy" | $V $CID 1025)" = '{"ok":true}'
check "control: errors and ping on one connection" test "$(printf '{"op":"hygiene","entropy":"!!"}\n{"op":"ping"}\n' | $V $CID 1025 | tr '\n' '|')" = "{\"ok\":false,\"error\":\"bad base64 in 'entropy'\"}|{\"ok\":true}|"
pids=()
for i in $(seq 1 20); do
  head -c 1000000 /dev/urandom >"$work/in$i"
  ( { printf 'TCP 5000\n'; cat "$work/in$i"; } | $V $CID 1024 >"$work/out$i" ) & pids+=($!)
  ( $V $CID 5000 <"$work/in$i" >"$work/dout$i" ) & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
ok=0
for i in $(seq 1 20); do
  { printf 'OK\n'; cat "$work/in$i"; } | cmp -s - "$work/out$i" && cmp -s "$work/in$i" "$work/dout$i" && ok=$((ok + 1))
done
check "concurrency: 20 forwarded + 20 direct 1 MB round trips" test "$ok" = 20
check "control: poweroff" test "$(printf '{"op":"poweroff"}\n' | $V $CID 1025)" = '{"ok":true}'
check "control: guest powers off" wait_exit 60
check "control: hygiene logged" console_has echo "control: hygiene applied id=sbx_smoke"

if [ "$fail" != 0 ]; then
  for f in "$work"/*.log; do echo "--- console $(basename "$f") (last 40 lines)"; tr -d '\r' <"$f" | grep -av '^$' | tail -40; done
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
