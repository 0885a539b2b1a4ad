#!/usr/bin/env bash
# Installs what building and testing onebox needs on Debian/Ubuntu: Debian packages and Bun (npm).
# --test: also the tools only the tests use (promtool, from Debian's prometheus package, checks GET /metrics); its
# Prometheus server is not left running.
set -euo pipefail
PKGS=(build-essential cpio busybox-static e2fsprogs qemu-system-x86 debootstrap
      clang libbpf-dev bpftool iproute2 nftables curl ca-certificates xz-utils zstd kmod
      python3-ipykernel python3-jupyter-client python3-tornado python3-ptyprocess
      python3-matplotlib python3-matplotlib-inline python3-pandas)
TEST_PKGS=(prometheus)
with_test=0
[ "${1:-}" = "--test" ] && with_test=1 && PKGS+=("${TEST_PKGS[@]}")
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if ((with_test)) && command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
fi
if ! command -v bun >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq npm >/dev/null; }
  npm install -g --silent bun@1.4.5
fi
bun --version >/dev/null
