#!/usr/bin/env bash
# Installs onebox on a fresh Debian/Ubuntu KVM host and starts it as a systemd service.
#
#   sudo bash install.sh            (from a checkout of this repository)
#   curl -fsSL <url>/install.sh | sudo ONEBOX_REPO=<git url> bash
#
# Steps: Debian packages + Bun (npm) -> build dist/onebox -> /usr/local/bin/onebox -> guest kernel
# -> systemd unit (onebox serve builds the default templates on first start) -> admin key printed.
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

# Find or fetch the source tree.
src=$(cd "$(dirname "${BASH_SOURCE[0]:-.}")" 2>/dev/null && pwd || true)
if [ -z "$src" ] || [ ! -f "$src/package.json" ]; then
  [ -n "${ONEBOX_REPO:-}" ] || die "not in a onebox checkout; set ONEBOX_REPO=<git url> to clone one"
  command -v git >/dev/null || { apt-get update -qq; apt-get install -y -qq git >/dev/null; }
  src=/usr/local/src/onebox
  rm -rf "$src"; git clone --depth 1 "$ONEBOX_REPO" "$src"
fi
cd "$src"

say "installing build dependencies (Debian packages, Bun from npm)"
bash scripts/install-deps.sh --no-test-deps
say "building dist/onebox"
bun install --frozen-lockfile >/dev/null
bun run build >/dev/null
install -m 0755 dist/onebox "$PREFIX/bin/onebox"

say "fetching the guest kernel (Debian's cloud kernel)"
bash scripts/fetch-kernel.sh "$DATA_DIR/kernels/debian-cloud"

say "installing the systemd service"
cat > /etc/systemd/system/onebox.service <<UNIT
[Unit]
Description=onebox: E2B-compatible microVM sandboxes
After=network-online.target

[Service]
ExecStart=$PREFIX/bin/onebox serve --port $PORT --data-dir $DATA_DIR ${SERVE_ARGS[*]}
Environment=ONEBOX_SOURCE_DIR=$src
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
  # ONEBOX_SOURCE_DIR as in the unit: without it serve does not build the default templates.
  ONEBOX_SOURCE_DIR=$src nohup "$PREFIX/bin/onebox" serve --port "$PORT" --data-dir "$DATA_DIR" "${SERVE_ARGS[@]}" \
    >>"$DATA_DIR/onebox.log" 2>&1 &
  for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 1; done
fi
"$PREFIX/bin/onebox" doctor || true
[ -f "$DATA_DIR/admin-key" ] && say "admin API key (also in $DATA_DIR/admin-key): $(cat "$DATA_DIR/admin-key")"
say "use it with: E2B_API_KEY=<key> E2B_API_URL=http://localhost:$PORT E2B_SANDBOX_URL=http://localhost:$PORT"
