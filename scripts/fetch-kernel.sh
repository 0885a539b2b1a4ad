#!/usr/bin/env bash
# Provisions onebox's default guest kernel: Debian's cloud kernel (vmlinuz + the modules the guest
# initramfs loads, with their dependencies), downloaded with apt-get and cached.
#
# usage: scripts/fetch-kernel.sh [DEST]            install into DEST (default /var/lib/onebox/kernels/debian-cloud)
#        scripts/fetch-kernel.sh --print-deb       download (cached) and print the path of the .deb only
#
# DEST gets: vmlinuz, modules/<module files, same relative paths as lib/modules/<ver>/>,
# modules/modules.dep (for the subset) and kernel.json:
#   {"name","version","package","vmlinuz","modules_dir","modules":[paths relative to modules_dir, load order]}
# Environment: ONEBOX_DEB_CACHE (default /var/cache/onebox/debs), ONEBOX_KERNEL_PACKAGE (meta package,
# default linux-image-cloud-amd64), ONEBOX_KERNEL_SUITE (take the package from this Debian suite
# only, e.g. bookworm-backports, through a private apt index under the cache; default: the
# machine's own apt sources). ONEBOX_DEBIAN_MIRROR: the mirror for ONEBOX_KERNEL_SUITE.
set -euo pipefail

die() { echo "fetch-kernel: $*" >&2; exit 1; }
log() { echo "fetch-kernel: $*" >&2; }

# The modules onebox-init loads (docs/architecture.md, "Inside the guest"); dependencies are added.
GUEST_MODULES=(virtio_mmio virtio_blk virtio-rng vsock vmw_vsock_virtio_transport_common
               vmw_vsock_virtio_transport overlay virtio_net)

DEB_CACHE=${ONEBOX_DEB_CACHE:-/var/cache/onebox/debs}
META=${ONEBOX_KERNEL_PACKAGE:-linux-image-cloud-amd64}
SUITE=${ONEBOX_KERNEL_SUITE:-}
# shellcheck source=apt-suite.sh
. "$(dirname "$0")/apt-suite.sh"
apt_suite "$SUITE" "$DEB_CACHE" "${ONEBOX_DEBIAN_MIRROR:-}" || die "ONEBOX_KERNEL_SUITE: not a suite name: $SUITE"

# kernel_deb: print the path of the cached kernel .deb, downloading it on first use.
kernel_deb() {
  command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian/Ubuntu host"
  local pkg unsigned
  pkg=$(apt-cache "${APT[@]}" depends "$META" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}' || true)
  if [ -z "$pkg" ]; then
    log "package index has no $META${SUITE:+ in $SUITE}; running apt-get update"
    apt-get "${APT[@]}" update -qq >&2 || die "apt-get update failed"
    pkg=$(apt-cache "${APT[@]}" depends "$META" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}' || true)
  fi
  [ -n "$pkg" ] || die "cannot resolve $META to a kernel package (is deb.debian.org reachable?)"
  # Prefer the -unsigned build: same kernel without the signing wrapper package.
  unsigned="${pkg%-unsigned}-unsigned"
  if apt-cache "${APT[@]}" show "$unsigned" >/dev/null 2>&1; then pkg=$unsigned; fi
  mkdir -p "$DEB_CACHE"
  local have
  have=$(ls "$DEB_CACHE/${pkg}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$have" ]; then
    log "downloading $pkg"
    # apt-get download writes into the current directory; the _apt sandbox user may not be able
    # to, so download as root into a temporary directory and move the file in atomically.
    local tmp; tmp=$(mktemp -d "$DEB_CACHE/.dl.XXXXXX")
    (cd "$tmp" && apt-get "${APT[@]}" download -q -o APT::Sandbox::User=root "$pkg" >&2) \
      || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
    have=$(ls "$tmp/${pkg}_"*.deb | head -1)
    mv "$have" "$DEB_CACHE/"; rm -rf "$tmp"
    have="$DEB_CACHE/$(basename "$have")"
  fi
  echo "$have"
}

if [ "${1:-}" = "--print-deb" ]; then kernel_deb; exit 0; fi
[ "${1:-}" != "-h" ] && [ "${1:-}" != "--help" ] || { sed -n '2,13p' "$0"; exit 0; }
[ "$(id -u)" = 0 ] || die "run as root (apt-get download and writing ${1:-/var/lib/onebox})"
command -v depmod >/dev/null || die "depmod not found: apt-get install kmod"
DEST=${1:-/var/lib/onebox/kernels/debian-cloud}

deb=$(kernel_deb)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
log "extracting $(basename "$deb")"
dpkg-deb -x "$deb" "$work/x"
ver=$(ls "$work/x/lib/modules" | head -1)
[ -n "$ver" ] && [ -f "$work/x/boot/vmlinuz-$ver" ] || die "unexpected package layout in $deb"
mdir="$work/x/lib/modules/$ver"
depmod -b "$work/x" "$ver" || die "depmod failed"

# Resolve each wanted module's file and its dependency closure, dependencies first.
declare -A seen=()
order=()
add_module_file() { # $1: path relative to $mdir
  local f=$1 dep
  [ -n "${seen[$f]:-}" ] && return 0
  seen[$f]=1
  for dep in $(awk -v f="$f:" '$1 == f { for (i = 2; i <= NF; i++) print $i }' "$mdir/modules.dep"); do
    add_module_file "$dep"
  done
  order+=("$f")
}
for m in "${GUEST_MODULES[@]}"; do
  # modules.dep names files; module names treat '-' and '_' alike.
  alt=${m//-/_}
  f=$(awk -F: '{print $1}' "$mdir/modules.dep" | grep -E "/(${m}|${alt}|${m//_/-})\.ko(\.[a-z]+)?$" | head -1 || true)
  if [ -z "$f" ]; then
    grep -qE "/(${m}|${alt})\.ko" "$mdir/modules.builtin" && { log "$m is built in"; continue; }
    die "module $m not found in $ver"
  fi
  add_module_file "$f"
done

# Install atomically: build next to DEST, then swap.
mkdir -p "$(dirname "$DEST")"
stage=$(mktemp -d "$(dirname "$DEST")/.$(basename "$DEST").XXXXXX")
cp "$work/x/boot/vmlinuz-$ver" "$stage/vmlinuz"
mkdir -p "$stage/modules"
for f in "${order[@]}"; do
  mkdir -p "$stage/modules/$(dirname "$f")"
  cp "$mdir/$f" "$stage/modules/$f"
done
for f in "${order[@]}"; do
  awk -v f="$f:" '$1 == f' "$mdir/modules.dep"
done >"$stage/modules/modules.dep"
{
  printf '{"name":"debian-cloud","version":"%s","package":"%s","vmlinuz":"vmlinuz","modules_dir":"modules","modules":[' \
    "$ver" "$(basename "$deb")"
  sep=""
  for f in "${order[@]}"; do printf '%s"%s"' "$sep" "$f"; sep=","; done
  printf ']}\n'
} >"$stage/kernel.json"
chmod -R a+rX "$stage"
if [ -e "$DEST" ]; then
  old="$DEST.old.$$"; mv "$DEST" "$old"; mv "$stage" "$DEST"; rm -rf "$old"
else
  mv "$stage" "$DEST"
fi
log "installed $ver into $DEST (${#order[@]} modules)"
echo "$DEST"
