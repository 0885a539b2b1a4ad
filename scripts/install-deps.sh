#!/usr/bin/env bash
# Installs what building and testing onebox needs on Debian/Ubuntu: Debian packages and Bun (npm).
set -euo pipefail
PKGS=(build-essential cpio busybox-static e2fsprogs qemu-system-x86 debootstrap
      clang libbpf-dev bpftool iproute2 nftables curl ca-certificates xz-utils zstd kmod
      python3-ipykernel python3-jupyter-client python3-tornado python3-ptyprocess
      python3-matplotlib python3-matplotlib-inline python3-pandas
      nodejs node-acorn esbuild r-cran-irkernel)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v bun >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq npm >/dev/null; }
  npm install -g --silent bun@1.4.5
fi
bun --version >/dev/null
