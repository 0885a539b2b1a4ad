#!/usr/bin/env bash
# Builds the guest initramfs: onebox-init as /init plus the kernel modules it loads, in order.
#
# usage: scripts/mkinitramfs.sh --modules DIR --out FILE [--init PATH] [--extra SRC:DEST ...]
#                               [--add-module NAME ...]
#   --modules DIR   a kernel's lib/modules/<ver> directory, or the modules/ directory that
#                   scripts/fetch-kernel.sh installs (same relative paths, with modules.dep)
#   --out FILE      the gzip'd newc cpio to write (atomically)
#   --init PATH     the init binary (default guest/init/build/onebox-init, built if missing)
#   --extra SRC:DEST  copy SRC into the image at DEST (repeatable), e.g. a test program
#   --add-module NAME load one more module (repeatable), e.g. virtio_pci to run under plain QEMU
# Layout: /init, /lib/modules/onebox/<name>.ko, /lib/modules/onebox/load.list (one file name a
# line, dependencies first: the order onebox-init loads them in), /dev/console.
set -euo pipefail

# What onebox-init needs (docs/guest.md); dependencies are added from modules.dep, or from each
# module's .modinfo "depends=" when the directory has no modules.dep (Debian ships none).
GUEST_MODULES=(virtio_mmio virtio_blk virtio-rng vsock vmw_vsock_virtio_transport_common
               vmw_vsock_virtio_transport overlay virtio_net)

REPO=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "mkinitramfs: error: $*" >&2; exit 1; }
log() { echo "mkinitramfs: $*" >&2; }

MODDIR="" OUT="" INIT="" EXTRAS=() ADD_MODULES=()
while (($#)); do
  case "$1" in
    --modules) MODDIR=${2:?--modules needs a directory}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --init) INIT=${2:?--init needs a path}; shift 2 ;;
    --extra) EXTRAS+=("${2:?--extra needs SRC:DEST}"); shift 2 ;;
    --add-module) ADD_MODULES+=("${2:?--add-module needs a module name}"); shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$MODDIR" ] && [ -n "$OUT" ] || die "usage: mkinitramfs.sh --modules DIR --out FILE [--init PATH] [--extra SRC:DEST ...]"
[ -d "$MODDIR" ] || die "modules directory $MODDIR does not exist"
for t in cpio gzip find; do command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"; done
if [ -z "$INIT" ]; then
  INIT="$REPO/guest/init/build/onebox-init"
  # In a checkout, rebuilt if a source changed; the builder onebox extracts (src/templates/builder-files.ts) has
  # the built file and no sources.
  if [ -f "$REPO/guest/init/Makefile" ]; then make -s -C "$REPO/guest/init" >&2 || die "building guest/init failed"; fi
fi
[ -x "$INIT" ] || die "init binary $INIT missing or not executable"

mkdir -p "$(dirname "$OUT")"
stage=$(mktemp -d "${TMPDIR:-/tmp}/onebox-initramfs.XXXXXX")
tmp_out="$OUT.tmp.$$"
cleanup() { rm -rf "$stage"; rm -f "$tmp_out"; }
trap cleanup EXIT

# module_file NAME: path (relative to MODDIR) of module NAME ('-' and '_' alike), or nothing.
module_file() {
  local n=$1 a=${1//-/_} b=${1//_/-} f
  if [ -f "$MODDIR/modules.dep" ]; then
    f=$(cut -d: -f1 "$MODDIR/modules.dep" | grep -E "(^|/)($a|$b)\.ko(\.(xz|zst|gz))?$" | head -1 || true)
  else
    f=$(cd "$MODDIR" && find . -regextype egrep -regex ".*/($a|$b)\.ko(\.(xz|zst|gz))?" | sed 's|^\./||' | head -1)
  fi
  [ -n "$f" ] && echo "$f"
  return 0
}

# module_deps FILE: the files FILE depends on.
module_deps() {
  local f=$1 d
  if [ -f "$MODDIR/modules.dep" ]; then
    awk -v f="$f:" '$1 == f { for (i = 2; i <= NF; i++) print $i }' "$MODDIR/modules.dep"
    return 0
  fi
  case "$f" in *.ko) ;; *) die "$f is compressed and $MODDIR has no modules.dep (run depmod)" ;; esac
  command -v objcopy >/dev/null || die "objcopy (binutils) needed to read module dependencies"
  for d in $(objcopy -O binary --only-section=.modinfo "$MODDIR/$f" /dev/stdout | tr '\0' '\n' |
             sed -n 's/^depends=//p' | tr ',' ' '); do
    local df; df=$(module_file "$d"); [ -n "$df" ] || die "dependency $d of $f not found"
    echo "$df"
  done
}

is_builtin() {
  [ -f "$MODDIR/modules.builtin" ] && grep -qE "/(${1//-/_}|${1//_/-})\.ko$" "$MODDIR/modules.builtin"
}

mkdir -p "$stage"/{dev,proc,sys,run,tmp,newroot,lib/modules/onebox}
declare -A seen=()
add() { # $1: module file relative to MODDIR; appends it after its dependencies
  local f=$1 d name
  [ -n "${seen[$f]:-}" ] && return 0
  seen[$f]=1
  for d in $(module_deps "$f"); do add "$d"; done
  name=$(basename "$f")
  case "$name" in
    *.ko) cp "$MODDIR/$f" "$stage/lib/modules/onebox/$name" ;;
    *.ko.xz) name=${name%.xz}; xz -dc "$MODDIR/$f" >"$stage/lib/modules/onebox/$name" ;;
    *.ko.zst) name=${name%.zst}; zstd -qdc "$MODDIR/$f" >"$stage/lib/modules/onebox/$name" ;;
    *.ko.gz) name=${name%.gz}; gzip -dc "$MODDIR/$f" >"$stage/lib/modules/onebox/$name" ;;
  esac
  echo "$name" >>"$stage/lib/modules/onebox/load.list"
}
: >"$stage/lib/modules/onebox/load.list"
for m in "${GUEST_MODULES[@]}" "${ADD_MODULES[@]}"; do
  f=$(module_file "$m")
  if [ -z "$f" ]; then
    is_builtin "$m" && { log "$m is built into the kernel"; continue; }
    die "module $m not found in $MODDIR"
  fi
  add "$f"
done

cp "$INIT" "$stage/init"
chmod 0755 "$stage/init"
for e in "${EXTRAS[@]}"; do
  src=${e%%:*} dest=${e#*:}
  [ "$src" != "$e" ] && [ -n "$dest" ] && [ "${dest#/}" != "$dest" ] || die "--extra wants SRC:/absolute/dest, got '$e'"
  [ -e "$src" ] || die "--extra source $src does not exist"
  mkdir -p "$stage$(dirname "$dest")"
  cp -a "$src" "$stage$dest"
done
# The kernel opens /dev/console for PID 1 before anything is mounted; without the node init
# starts with no stdout (onebox-init reopens it from devtmpfs anyway).
if [ "$(id -u)" = 0 ]; then mknod -m 600 "$stage/dev/console" c 5 1; fi

# Fixed mtimes and sorted names: the same inputs give the same bytes (cacheable by hash).
find "$stage" -exec touch -h -d @0 {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible -R 0:0 | gzip -9n) >"$tmp_out"
mv "$tmp_out" "$OUT"
log "wrote $OUT ($(du -k "$OUT" | cut -f1) KiB): $(tr '\n' ' ' <"$stage/lib/modules/onebox/load.list")"
