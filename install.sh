#!/usr/bin/env bash
# Installs onebox on a fresh Debian/Ubuntu KVM host and starts it as a systemd service.
#
#   sudo bash install.sh                                   (from a checkout: builds dist/onebox from source)
#   sudo bash install.sh onebox-<v>-linux-x64.tar.gz       (a release tarball; or ONEBOX_RELEASE_TARBALL=FILE)
#   sudo bash onebox-<v>-linux-x64/install.sh              (from an unpacked release: the onebox beside it)
#   curl -fsSL <url>/install.sh | sudo ONEBOX_RELEASE_URL=<url of the .tar.gz> bash
#   curl -fsSL <url>/install.sh | sudo ONEBOX_REPO=<git url> bash   (clones and builds from source)
#
# A release is checked against its sha256: ONEBOX_RELEASE_SHA256, else the .sha256 file beside it (<url>.sha256, or
# FILE.sha256), which must exist for a URL. Only a checkout builds from source (Debian build tools + Bun).
# Steps: the binary -> /usr/local/bin/onebox -> the Debian packages it runs (`onebox doctor --packages`) -> guest
# kernel -> systemd unit (onebox serve builds the default templates on first start) -> admin key printed.
# ONEBOX_INSTALL_ONLY=1 stops after the packages (no kernel, no service): a packaging step, and the tests.
set -euo pipefail

PREFIX=${PREFIX:-/usr/local}
DATA_DIR=${ONEBOX_DATA_DIR:-/var/lib/onebox}
PORT=${ONEBOX_PORT:-3000}
# More `onebox serve` flags, e.g. ONEBOX_SERVE_ARGS="--boot-timeout-ms 900000" on an emulated host
# (scripts/verify-install.sh), where a template's first cold boot takes minutes.
read -r -a SERVE_ARGS <<<"${ONEBOX_SERVE_ARGS:-}"

say() { printf '\033[1monebox install:\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash install.sh): onebox needs /dev/kvm, TAP devices and $DATA_DIR"

# apt_install PKG...: the ones not installed yet.
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# check_sha256 FILE SUMFILE_OR_EMPTY: FILE's sha256 against ONEBOX_RELEASE_SHA256 or the first word of SUMFILE.
check_sha256() {
  local want=${ONEBOX_RELEASE_SHA256:-} got
  [ -n "$want" ] || want=$(cut -d' ' -f1 "$2")
  [[ "$want" =~ ^[0-9a-f]{64}$ ]] || die "no sha256 to check $1 against (got '$want')"
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "$1: sha256 $got does not match the release's $want"
  say "sha256 ok ($got)"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/onebox-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# install.sh's own directory; none when piped into bash (curl | bash).
here=""
[ -z "${BASH_SOURCE[0]:-}" ] || here=$(cd "$(dirname "${BASH_SOURCE[0]}")" 2>/dev/null && pwd || true)
tarball=${1:-${ONEBOX_RELEASE_TARBALL:-}}
binary=""

if [ -n "${ONEBOX_RELEASE_URL:-}" ]; then
  command -v curl >/dev/null || apt_install curl ca-certificates
  say "downloading $ONEBOX_RELEASE_URL"
  curl -fsSL --retry 3 -o "$tmp/release.tar.gz" "$ONEBOX_RELEASE_URL" || die "downloading $ONEBOX_RELEASE_URL failed"
  if [ -z "${ONEBOX_RELEASE_SHA256:-}" ]; then
    curl -fsSL --retry 3 -o "$tmp/release.tar.gz.sha256" "$ONEBOX_RELEASE_URL.sha256" \
      || die "no $ONEBOX_RELEASE_URL.sha256 to check the download against (or set ONEBOX_RELEASE_SHA256)"
  fi
  check_sha256 "$tmp/release.tar.gz" "$tmp/release.tar.gz.sha256"
  tarball="$tmp/release.tar.gz"
elif [ -n "$tarball" ]; then
  [ -f "$tarball" ] || die "release tarball $tarball does not exist"
  if [ -n "${ONEBOX_RELEASE_SHA256:-}" ] || [ -f "$tarball.sha256" ]; then
    check_sha256 "$tarball" "$tarball.sha256"
  else
    say "warning: no $tarball.sha256 (nor ONEBOX_RELEASE_SHA256): installing the local file unchecked"
  fi
fi

if [ -n "$tarball" ]; then
  mkdir "$tmp/x"
  tar -xzf "$tarball" -C "$tmp/x" --no-same-owner || die "$tarball is not a gzip'd tar"
  binary=$(find "$tmp/x" -mindepth 2 -maxdepth 2 -type f -name onebox | head -1)
  [ -n "$binary" ] || die "$tarball has no <dir>/onebox (make releases with bun run release)"
elif [ -n "$here" ] && [ -f "$here/onebox" ] && [ ! -f "$here/package.json" ]; then
  binary="$here/onebox" # an unpacked release: install.sh beside the binary
else
  # From source: a checkout, or one cloned from ONEBOX_REPO.
  src=$here
  if [ -z "$src" ] || [ ! -f "$src/package.json" ]; then
    [ -n "${ONEBOX_REPO:-}" ] || die "not in a onebox checkout or release: set ONEBOX_RELEASE_URL=<url of a release .tar.gz>, pass a release tarball, or ONEBOX_REPO=<git url> to build from source"
    command -v git >/dev/null || apt_install git
    src=/usr/local/src/onebox
    rm -rf "$src"; git clone --depth 1 "$ONEBOX_REPO" "$src"
  fi
  cd "$src"
  say "installing build dependencies (Debian packages, Bun from npm)"
  bash scripts/install-deps.sh --no-test-deps
  say "building dist/onebox"
  bun install --frozen-lockfile >/dev/null
  bun run build >/dev/null
  binary="$src/dist/onebox"
fi
mkdir -p "$PREFIX/bin"
install -m 0755 "$binary" "$PREFIX/bin/onebox"
say "installed $PREFIX/bin/onebox"

# What onebox runs (its template builder's scripts, networking, TLS), as onebox itself names it.
host_pkgs=$("$PREFIX/bin/onebox" doctor --packages) || die "$PREFIX/bin/onebox does not run on this host"
[ -n "$host_pkgs" ] || die "$PREFIX/bin/onebox doctor --packages named no packages"
# shellcheck disable=SC2086 # one package name a line
apt_install $host_pkgs
if [ "${ONEBOX_INSTALL_ONLY:-0}" = 1 ]; then
  say "ONEBOX_INSTALL_ONLY=1: not fetching the kernel nor starting the service"
  exit 0
fi

say "fetching the guest kernel (Debian's cloud kernel)"
"$PREFIX/bin/onebox" template fetch-kernel --data-dir "$DATA_DIR"

say "installing the systemd service"
cat > /etc/systemd/system/onebox.service <<UNIT
[Unit]
Description=onebox: E2B-compatible microVM sandboxes
After=network-online.target

[Service]
ExecStart=$PREFIX/bin/onebox serve --port $PORT --data-dir $DATA_DIR ${SERVE_ARGS[*]}
Restart=on-failure
# VMs live in their own processes and survive a daemon restart; only the daemon is restarted.
KillMode=process
# Each VM process runs in its own child cgroup (memory, pids, CPU limits: docs/vmm.md "Isolation").
Delegate=yes
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
UNIT
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now onebox.service
  say "started; waiting for the API on :$PORT"
  for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 1; done
else
  say "no systemd here: starting onebox in the background (log: $DATA_DIR/onebox.log)"
  mkdir -p "$DATA_DIR"
  nohup "$PREFIX/bin/onebox" serve --port "$PORT" --data-dir "$DATA_DIR" "${SERVE_ARGS[@]}" \
    >>"$DATA_DIR/onebox.log" 2>&1 &
  for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 1; done
fi
"$PREFIX/bin/onebox" doctor || true
[ -f "$DATA_DIR/admin-key" ] && say "admin API key (also in $DATA_DIR/admin-key): $(cat "$DATA_DIR/admin-key")"
say "use it with: E2B_API_KEY=<key> E2B_API_URL=http://localhost:$PORT E2B_SANDBOX_URL=http://localhost:$PORT"
