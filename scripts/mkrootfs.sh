#!/usr/bin/env bash
# Builds a template's disks: rootfs.ext4 (Debian bookworm + the Bun runtime + the agent, read-only
# base) and layer.ext4 (an empty, sparse, writable ext4), from a cached debootstrap tree.
#
# usage: scripts/mkrootfs.sh --out DIR --variant minimal|base|code-interpreter|tree [--tree DIR] [--bun PATH]
#            [--bun-be-bun] [--agent FILE] [--packages-file FILE] [--extra SRC:DEST ...] [--layer-size SIZE] [--mirror URL]
#   --out DIR            gets rootfs.ext4, layer.ext4 and manifest.json (replaced atomically)
#   --variant            tree:    the root tree given with --tree (an unpacked OCI image), no debootstrap
#                        minimal: bash coreutils procps ca-certificates
#                        base:    minimal + python (3), pip, Node.js, npm, git, curl, sudo, iproute2 and the like
#                        code-interpreter: base + guest/interpreter (packages.txt, its .py/.mjs/.java files in
#                        /opt/onebox/interpreter, service.conf as services.d/interpreter.conf)
#   --tree DIR           with --variant tree: the root tree to copy (left as it is)
#   --extra SRC:DEST     copy a file or directory into the image at DEST (repeatable)
#   --bun PATH           the Bun runtime installed as /opt/onebox/bin/bun (default: the host's bun)
#   --bun-be-bun         PATH is a compiled onebox (Bun with onebox inside): the agent runs it with BUN_BE_BUN=1,
#                        which makes it plain Bun (how dist/onebox builds images on a host with no Bun)
#   --agent FILE         the agent bundle (default dist/guest/agent.js; the image builds without it)
#   --packages-file F    more Debian packages, one per line ('#' comments), e.g. for code-interpreter
#   --layer-size SIZE    size of the empty writable layer (default 2G; sparse)
# Cache: $ONEBOX_ROOTFS_CACHE (default /var/cache/onebox/rootfs), one debootstrap tree per
# variant + package list. Safe to interrupt and rerun.
set -euo pipefail

# Bump when the cached tree's recipe changes (it is part of the cache key).
# 2: no docs/man/locales; build-only dependencies replaced by an empty stub package.
RECIPE_VERSION=2
SUITE=bookworm
MINIMAL_PKGS=(bash coreutils procps ca-certificates)
# E2B's base image has `python` (python-is-python3) and `python3` with pip, Node.js with npm, git and curl: code
# written for E2B runs `python -m http.server` or `npm install` unchanged.
BASE_PKGS=(python3 python3-pip python3-venv python-is-python3 git curl wget sudo iproute2 iputils-ping
           less vim-tiny unzip xz-utils jq file)
# Installed by apt-get after debootstrap (see apt_pkgs below): debootstrap fails configuring npm's ~300 node-*
# dependencies ("Failure while configuring base packages ... possibly the package npm is at fault").
BASE_APT_PKGS=(nodejs npm)

# Packages Debian declares as hard dependencies but that nothing in a sandbox needs at run time,
# satisfied by one empty package (onebox-image-stubs) so apt never installs them:
#   python3-pythran: a build-time compiler scipy's Debian package depends on; it pulls g++, boost
#                    and python3-dev (~600 MiB); scipy's compiled modules never import it;
#   gdb:             pulled by debugpy (ipykernel's debugger) for attach-by-pid only;
#   python3-tk:      Tk for matplotlib's TkAgg window backend (needs X); images render with Agg.
# A user can still `apt-get install` the real ones (a Provides does not block them).
STUB_PROVIDES="python3-pythran (= 0.11.0+ds-7), gdb (= 13.1-3), python3-tk (= 3.11.2-3)"

REPO=$(cd "$(dirname "$0")/.." && pwd)
T0=$SECONDS
die() { echo "mkrootfs: error: $*" >&2; exit 1; }
step() { echo "mkrootfs: [+$((SECONDS - T0))s] $*" >&2; }
# Machine-readable step starts for `onebox template build`'s progress display (src/templates/build-default.ts).
phase() { echo "mkrootfs: phase $*" >&2; }

OUT="" VARIANT="" TREE_SRC="" BUN="" BE_BUN="" AGENT="" PKGFILE="" LAYER_SIZE=2G EXTRAS=() PKGFILES=()
MIRROR=${ONEBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
while (($#)); do
  case "$1" in
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --variant) VARIANT=${2:?--variant needs minimal or base}; shift 2 ;;
    --tree) TREE_SRC=${2:?--tree needs a directory}; shift 2 ;;
    --bun) BUN=${2:?--bun needs a path}; shift 2 ;;
    --agent) AGENT=${2:?--agent needs a file}; shift 2 ;;
    --packages-file) PKGFILE=${2:?--packages-file needs a file}; shift 2 ;;
    --extra) EXTRAS+=("${2:?--extra needs SRC:DEST}"); shift 2 ;;
    --layer-size) LAYER_SIZE=${2:?--layer-size needs a size}; shift 2 ;;
    --mirror) MIRROR=${2:?--mirror needs a URL}; shift 2 ;;
    --bun-be-bun) BE_BUN=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$OUT" ] && [ -n "$VARIANT" ] || die "usage: mkrootfs.sh --out DIR --variant minimal|base [...] (see --help)"
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and file ownership in the image need it)"
# The tree variant (an OCI image's tree) runs no debootstrap: a host without it still builds from images.
tools=(mkfs.ext4 chroot sha256sum flock useradd ldd)
[ "$VARIANT" = tree ] || tools+=(debootstrap)
for t in "${tools[@]}"; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"
done

# pkgs: installed by debootstrap --include (its resolver copes with these short lists);
# apt_pkgs: from packages files, installed afterwards with apt-get in the chroot, because
# debootstrap's resolver fails on larger sets (measured: python3-zmq for the interpreter, npm for base).
pkgs=("${MINIMAL_PKGS[@]}")
apt_pkgs=()
case "$VARIANT" in
  tree)
    [ -n "$TREE_SRC" ] && [ -d "$TREE_SRC" ] || die "--variant tree needs --tree DIR (an existing directory)"
    pkgs=() ;;
  minimal) ;;
  base) pkgs+=("${BASE_PKGS[@]}"); apt_pkgs+=("${BASE_APT_PKGS[@]}") ;;
  code-interpreter)
    # guest/interpreter/README.md, "Installing it in an image".
    pkgs+=("${BASE_PKGS[@]}")
    apt_pkgs+=("${BASE_APT_PKGS[@]}")
    INTERP="$REPO/guest/interpreter"
    PKGFILES+=("$INTERP/packages.txt")
    for f in "$INTERP"/*.py "$INTERP"/*.mjs "$INTERP"/*.java; do EXTRAS+=("$f:/opt/onebox/interpreter/$(basename "$f")"); done
    EXTRAS+=("$INTERP/service.conf:/etc/onebox/services.d/interpreter.conf")
    ;;
  *) die "--variant must be minimal, base, code-interpreter or tree, not '$VARIANT'" ;;
esac
[ -z "$TREE_SRC" ] || [ "$VARIANT" = tree ] || die "--tree goes with --variant tree"
[ -z "$PKGFILE" ] || PKGFILES+=("$PKGFILE")
for pf in "${PKGFILES[@]}"; do
  [ -f "$pf" ] || die "packages file $pf does not exist"
  while read -r p _; do
    [ -z "$p" ] || [ "${p:0:1}" = "#" ] && continue
    [[ "$p" =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || die "bad package name '$p' in $pf"
    apt_pkgs+=("$p")
  done <"$pf"
done
for e in "${EXTRAS[@]}"; do
  src=${e%%:*} dest=${e#*:}
  [ "$src" != "$e" ] && [ "${dest#/}" != "$dest" ] || die "--extra wants SRC:/absolute/dest, got '$e'"
  [ -e "$src" ] || die "--extra source $src does not exist"
done
((${#pkgs[@]} == 0)) || mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | LC_ALL=C sort -u)
if ((${#apt_pkgs[@]})); then
  mapfile -t apt_pkgs < <(printf '%s\n' "${apt_pkgs[@]}" | LC_ALL=C sort -u | LC_ALL=C comm -23 - <(printf '%s\n' "${pkgs[@]}"))
fi

[ -n "$BUN" ] || BUN=$(readlink -f "$(command -v bun)") || die "bun not on PATH; pass --bun PATH"
[ -x "$BUN" ] || die "bun runtime $BUN is not an executable"
[ -n "$AGENT" ] || AGENT="$REPO/dist/guest/agent.js"

CACHE=${ONEBOX_ROOTFS_CACHE:-/var/cache/onebox/rootfs}
mkdir -p "$CACHE"
key=$( { printf '%s\n' "v$RECIPE_VERSION" "$SUITE" "$MIRROR" "$STUB_PROVIDES" "${pkgs[@]}"
         ((${#apt_pkgs[@]} == 0)) || printf 'apt:%s\n' "${apt_pkgs[@]}"; } | sha256sum | cut -c1-16)
TREE="$CACHE/debootstrap-$VARIANT-$key"

stage="" outtmp=""
cleanup() {
  [ -n "$stage" ] && rm -rf "$stage"
  [ -n "$outtmp" ] && rm -rf "$outtmp"
  if [ -n "${TREE_TMP:-}" ]; then
    # Never rm -rf through a mount: unmount the chroot's /proc first, refuse if still mounted.
    mountpoint -q "$TREE_TMP/proc" && umount -l "$TREE_TMP/proc"
    if findmnt -rn -o TARGET | grep -qF "$TREE_TMP/"; then
      echo "mkrootfs: warning: $TREE_TMP still has mounts; not removing it" >&2
    else
      rm -rf "$TREE_TMP"
    fi
  fi
  return 0
}
trap cleanup EXIT

# The empty package named in STUB_PROVIDES, written to ROOT/tmp for `dpkg -i` in the chroot.
write_stub_deb() {
  local d="$1/tmp/onebox-image-stubs"
  mkdir -p "$d/DEBIAN"
  cat >"$d/DEBIAN/control" <<CONTROL
Package: onebox-image-stubs
Version: $RECIPE_VERSION
Architecture: all
Maintainer: onebox <onebox@localhost>
Provides: $STUB_PROVIDES
Description: satisfies build-only dependencies of sandbox images (scripts/mkrootfs.sh)
CONTROL
  dpkg-deb --root-owner-group -b "$d" "$1/tmp/onebox-image-stubs.deb" >/dev/null
  rm -rf "$d"
}

# Drops what a sandbox never reads: documentation (keeping the copyright files), man and info
# pages, translations (C.UTF-8 is the guests' locale), apt caches and logs; and tells dpkg to skip
# them for packages users install later (the usual slim-image dpkg excludes).
trim_tree() {
  local r=$1
  mkdir -p "$r/etc/dpkg/dpkg.cfg.d"
  cat >"$r/etc/dpkg/dpkg.cfg.d/01-onebox-slim" <<'CFG'
# written by onebox (scripts/mkrootfs.sh): sandboxes carry no docs, man pages or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG
  find "$r/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian/*
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* \
         "$r"/var/cache/debconf/*-old "$r"/var/log/*.log "$r"/var/log/apt/* 2>/dev/null || true
}
trap 'exit 130' INT TERM

# 1. The debootstrap tree, shared by runs with the same key; one builder at a time.
exec 9>"$CACHE/.lock"
if [ "$VARIANT" = tree ]; then
  TREE=$(cd "$TREE_SRC" && pwd)
  step "using the given tree $TREE"
else
flock -n 9 || { step "waiting for another mkrootfs.sh run to release $CACHE/.lock"; flock 9; }
if [ ! -f "$TREE/.done" ]; then
  phase debootstrap
  step "debootstrap $SUITE minbase + ${#pkgs[@]} packages into the cache (first run for this key)"
  : >"$CACHE/debootstrap-$key.log"
  rm -rf "$TREE"
  TREE_TMP=$(mktemp -d "$CACHE/.debootstrap.XXXXXX")
  chmod 0755 "$TREE_TMP" # mktemp's 0700 would become the chroot's /, closed to non-root users
  include=$(IFS=,; echo "${pkgs[*]}")
  debootstrap --variant=minbase --include="$include" "$SUITE" "$TREE_TMP" "$MIRROR" >>"$CACHE/debootstrap-$key.log" 2>&1 \
    || die "debootstrap failed; see $CACHE/debootstrap-$key.log"
  phase packages
  if ((${#apt_pkgs[@]})); then
    step "apt-get install ${#apt_pkgs[@]} more packages in the chroot"
    # No daemons may start inside the chroot (policy-rc.d), and postinst scripts want /proc.
    printf '#!/bin/sh\nexit 101\n' >"$TREE_TMP/usr/sbin/policy-rc.d"
    chmod 0755 "$TREE_TMP/usr/sbin/policy-rc.d"
    mount -t proc proc "$TREE_TMP/proc"
    write_stub_deb "$TREE_TMP"
    { chroot "$TREE_TMP" dpkg -i /tmp/onebox-image-stubs.deb &&
      chroot "$TREE_TMP" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      chroot "$TREE_TMP" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${apt_pkgs[@]}" &&
      chroot "$TREE_TMP" apt-get clean; } >>"$CACHE/debootstrap-$key.log" 2>&1 \
      || die "apt-get install in the chroot failed; see $CACHE/debootstrap-$key.log"
    umount "$TREE_TMP/proc"
    rm -f "$TREE_TMP/usr/sbin/policy-rc.d"
  fi
  rm -f "$TREE_TMP/tmp/onebox-image-stubs.deb"
  step "trimming docs, man pages, locales and caches"
  trim_tree "$TREE_TMP"
  touch "$TREE_TMP/.done"
  mv "$TREE_TMP" "$TREE"
  TREE_TMP=""
else
  phase debootstrap cached
  phase packages cached
  step "using cached debootstrap tree $TREE"
fi
flock -u 9
fi

# 2. A private copy to customise (the cache must stay pristine).
outparent=$(dirname "$OUT")
mkdir -p "$outparent"
# Absolute: useradd --root refuses a relative chroot path ("only absolute paths are supported"), and --out is
# relative in scripts/test-e2e.sh.
outparent=$(cd "$outparent" && pwd)
stage=$(mktemp -d "$outparent/.rootfs-stage.XXXXXX")
phase image
step "copying the tree"
cp -a "$TREE/." "$stage/"
chmod 0755 "$stage" # trees cached by older versions of this script have a 0700 root
rm -f "$stage/.done"

step "configuring: user, agent, Bun, hostname"
# The tree may be an image from anywhere: nothing below may follow one of its symlinks out of the
# stage (an /etc or /opt that is a symlink to / would have us write the build host's files).
for d in etc etc/onebox etc/sudoers.d opt opt/onebox home; do
  [ ! -L "$stage/$d" ] || die "the image's /$d is a symlink ($(readlink "$stage/$d")); onebox writes there and will not follow it"
done
# onebox-init mounts these; an image from scratch may lack them (a link to elsewhere is left alone).
for d in etc tmp proc sys dev run; do [ -L "$stage/$d" ] || mkdir -p "$stage/$d"; done
[ -L "$stage/tmp" ] || chmod 1777 "$stage/tmp"
# Images without a user database (scratch or busybox ones) get root's, which useradd needs.
[ -e "$stage/etc/passwd" ] || echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
[ -e "$stage/etc/group" ] || echo 'root:x:0:' >"$stage/etc/group"
# E2B's SDK runs every command as `/bin/bash -l -c CMD`: an image without bash (busybox, Alpine)
# gets a /bin/bash that execs its own /bin/sh, which takes -l and -c the same way. A script, not a
# link: busybox picks its applet by the name it was called by, and has no `bash`.
shell=/bin/bash
if [ ! -e "$stage/bin/bash" ] && [ ! -L "$stage/bin/bash" ] && [ ! -e "$stage/usr/bin/bash" ]; then
  if [ -e "$stage/bin/sh" ] || [ -L "$stage/bin/sh" ]; then
    bash_at="$stage/bin/bash"
    [ ! -L "$stage/bin" ] || bash_at="$stage/usr/bin/bash" # usrmerged: bin -> usr/bin
    printf '#!/bin/sh\n# written by onebox (scripts/mkrootfs.sh): this image has no bash; E2B runs commands with /bin/bash -l -c\nexec /bin/sh "$@"\n' >"$bash_at"
    chmod 0755 "$bash_at"
    step "no /bin/bash in the image: /bin/bash runs /bin/sh"
  else
    shell=/bin/sh
    echo "mkrootfs: warning: the image has no /bin/sh: commands.run (which runs /bin/bash) will fail in it" >&2
  fi
fi
# The host's useradd with --root chroots itself into the stage: it runs on the host's libc, never
# on the image's (which may be musl, or absent), and reads and writes the image's own files.
if ! grep -q '^user:' "$stage/etc/passwd"; then
  uid_opt=(--uid 1000)
  ! cut -d: -f3 "$stage/etc/passwd" | grep -qx 1000 || uid_opt=() # e.g. node images' `node`
  useradd --root "$stage" --create-home "${uid_opt[@]}" --user-group --shell "$shell" user \
    || die "adding user 'user' to the image failed"
  rm -f "$stage/etc/.pwd.lock"
fi
if [ -x "$stage/usr/bin/sudo" ]; then
  mkdir -p "$stage/etc/sudoers.d"
  rm -f "$stage/etc/sudoers.d/user"
  echo 'user ALL=(ALL:ALL) NOPASSWD: ALL' >"$stage/etc/sudoers.d/user"
  chmod 0440 "$stage/etc/sudoers.d/user"
fi
# Every commands.run is `bash -l -c` (E2B's SDK), so /etc/profile runs per command, and Debian's forks and execs
# `id -u` to pick root's PATH: in an emulated guest that doubled a `bash -c`'s cost. bash knows its EUID (read-only,
# never taken from the environment); other shells still ask id. Same PATH either way (scripts/mkrootfs-profile.test.ts).
# Our Debian images only; dpkg keeps the edited conffile unless base-files ever ships a different /etc/profile.
PROFILE_EUID_SED='s/"\$(id -u)"/"${EUID:-$(id -u)}"/g'
if [ "$VARIANT" != tree ] && [ -f "$stage/etc/profile" ] && [ ! -L "$stage/etc/profile" ]; then
  sed -i -e "$PROFILE_EUID_SED" "$stage/etc/profile"
fi
rm -rf "$stage/opt/onebox"
install -D -m 0755 "$BUN" "$stage/opt/onebox/bin/bun"
# Bun is linked against glibc. It runs through its own copy of the host's glibc loader and
# libraries in /opt/onebox/lib (`ld.so --library-path`), never through the image's: an image with
# musl (Alpine), an older glibc or no libc at all runs the agent the same way. The loader's
# --library-path is not inherited, so the processes the agent starts use the image's own libraries.
mkdir -p "$stage/opt/onebox/lib"
bun_libs=$(ldd "$BUN" | grep -o '/[^ ]*') || die "ldd $BUN failed"
for l in $bun_libs; do install -m 0755 "$(readlink -f "$l")" "$stage/opt/onebox/lib/$(basename "$l")"; done
[ -x "$stage/opt/onebox/lib/ld-linux-x86-64.so.2" ] || die "ldd $BUN named no ld-linux-x86-64.so.2"
# The agent starts commands as a user through onebox-runas (static: works in any image, musl or none; much
# cheaper per command than util-linux's setpriv, which not every image has anyway). guest/init/tools/onebox-runas.c
RUNAS="$REPO/guest/init/build/onebox-runas"
[ -x "$RUNAS" ] || make -C "$REPO/guest/init" build/onebox-runas >&2 || die "building onebox-runas failed"
install -m 0755 "$RUNAS" "$stage/opt/onebox/bin/onebox-runas"
mkdir -p "$stage/opt/onebox/agent" "$stage/etc/onebox/services.d"
agent_sha=""
if [ -f "$AGENT" ]; then
  install -m 0644 "$AGENT" "$stage/opt/onebox/agent/agent.js"
  agent_sha=$(sha256sum <"$AGENT" | cut -c1-64)
else
  echo "mkrootfs: warning: agent bundle $AGENT not found (run bun run build); the image boots without an agent" >&2
fi
# Read by onebox-init (guest/init/service-conf.h: exec=, env=, cwd=, user=, log=).
cat >"$stage/etc/onebox/agent.conf" <<'CONF'
# The envd-compatible agent, supervised by onebox-init (restarted with backoff if it dies).
exec=/opt/onebox/lib/ld-linux-x86-64.so.2 --library-path /opt/onebox/lib /opt/onebox/bin/bun /opt/onebox/agent/agent.js
env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
env=HOME=/root
env=LANG=C.UTF-8
cwd=/
log=console
CONF
# The agent passes none of its own environment to the commands it starts (only PATH), so this stays its own.
[ -z "$BE_BUN" ] || echo 'env=BUN_BE_BUN=1' >>"$stage/etc/onebox/agent.conf"
for e in "${EXTRAS[@]}"; do
  src=${e%%:*} dest=${e#*:}
  mkdir -p "$stage$(dirname "$dest")"
  cp -a "$src" "$stage$dest"
  chown -R root:root "$stage$dest"
  chmod -R a+rX "$stage$dest"
done
if [ "$VARIANT" = code-interpreter ] && [ -x "$stage/usr/bin/python3" ]; then
  # Saves seconds on the first plot in every sandbox (guest/interpreter/README.md).
  chroot "$stage" runuser -u user -- env HOME=/home/user python3 -c 'import matplotlib.pyplot' >/dev/null 2>&1 \
    || echo "mkrootfs: warning: building matplotlib's font cache failed" >&2
fi
rm -f "$stage/etc/hostname" "$stage/etc/hosts" "$stage/etc/resolv.conf" "$stage/etc/machine-id" # never write through an image's links
echo onebox >"$stage/etc/hostname"
printf '127.0.0.1\tlocalhost onebox\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
# debootstrap copied the build host's resolver config; guests get theirs from the host later.
echo '# written by onebox' >"$stage/etc/resolv.conf"
: >"$stage/etc/machine-id"
rm -f "$stage/etc/ssh/ssh_host_"* 2>/dev/null || true

# 3. The images, next to OUT, renamed into place at the end.
outtmp=$(mktemp -d "$outparent/.rootfs-out.XXXXXX")
mib=$(du -sm "$stage" | cut -f1)
files=$(find "$stage" -xdev | wc -l)
size=$((mib * 115 / 100 + 64))
inodes=$((files * 12 / 10 + 4096))
step "mkfs.ext4 rootfs.ext4 (${mib} MiB of files, ${files} inodes -> ${size} MiB)"
# No journal: the base is mounted read-only by every clone, never written.
mkfs.ext4 -q -F -L onebox-root -b 4096 -I 256 -O ^has_journal -m 0 -N "$inodes" -E lazy_itable_init=0 -d "$stage" "$outtmp/rootfs.ext4" "${size}M" >/dev/null \
  || die "mkfs.ext4 of rootfs.ext4 failed"
step "mkfs.ext4 layer.ext4 ($LAYER_SIZE, sparse)"
truncate -s "$LAYER_SIZE" "$outtmp/layer.ext4"
# Inode tables marked zeroed now (mkfs punches them, so the file stays sparse): otherwise every
# clone's kernel would zero them in the background (ext4lazyinit), dirtying its copy of the layer.
# The journal is left unwritten: holes read as zeros, which is what zeroing would write.
mkfs.ext4 -q -F -L onebox-layer -m 0 -E lazy_itable_init=0,lazy_journal_init=1 "$outtmp/layer.ext4" \
  || die "mkfs.ext4 of layer.ext4 failed"
cat >"$outtmp/manifest.json" <<JSON
{"variant":"$VARIANT","suite":"$SUITE","packages":[$( ((${#pkgs[@]} + ${#apt_pkgs[@]} == 0)) || printf '"%s",' "${pkgs[@]}" "${apt_pkgs[@]}" | sed 's/,$//')],"bun":"$(BUN_BE_BUN=1 "$BUN" --version)","agent_sha256":"$agent_sha","rootfs_mib":$size,"built_at":"$(date -u +%FT%TZ)"}
JSON
rm -rf "$stage"
stage=""

mkdir -p "$OUT"
for f in rootfs.ext4 layer.ext4 manifest.json; do mv -f "$outtmp/$f" "$OUT/$f"; done
rmdir "$outtmp"
outtmp=""
step "done: $OUT/rootfs.ext4 ($(du -m --apparent-size "$OUT/rootfs.ext4" | cut -f1) MiB), $OUT/layer.ext4 ($(du -m "$OUT/layer.ext4" | cut -f1) MiB allocated)"
