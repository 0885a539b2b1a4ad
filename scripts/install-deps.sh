#!/usr/bin/env bash
# Installs what building, running and testing onebox needs on Debian/Ubuntu: Debian packages and Bun (npm).
# usage: scripts/install-deps.sh [--no-test-deps]
#   --no-test-deps   skip what only the tests use (install.sh on a production box): docker-registry,
#                    musl (the test registry and the test's musl image, src/templates/oci/*.test.ts),
#                    prometheus (its promtool checks GET /metrics, src/api/metrics-api.test.ts),
#                    openjdk-17-jdk-headless (jshell for guest/interpreter/java-kernel.test.ts; the guest
#                    image gets its own from guest/interpreter/packages.txt), qemu-utils (qemu-img: the
#                    test host's --disk overlay, scripts/verify-install.sh and verify-release.sh)
set -euo pipefail
# skopeo and umoci: `onebox template build --from-image` (docs/templates.md "Templates from OCI images").
# openssl: `onebox serve --tls` makes its CA and a certificate per getHost() name with it (docs/api.md "TLS").
PKGS=(build-essential cpio busybox-static e2fsprogs qemu-system-x86 debootstrap
      clang libbpf-dev bpftool iproute2 nftables curl ca-certificates openssl xz-utils zstd kmod
      skopeo umoci binutils libbpf1 passwd util-linux dpkg
      python3-ipykernel python3-jupyter-client python3-tornado python3-ptyprocess
      python3-matplotlib python3-matplotlib-inline python3-pandas
      nodejs node-acorn esbuild r-cran-irkernel)
TEST_PKGS=(chromium docker-registry musl prometheus openjdk-17-jdk-headless qemu-utils)
[ "${1:-}" = --no-test-deps ] || PKGS+=("${TEST_PKGS[@]}")
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The tests start their own registry on 127.0.0.1 and run promtool alone; the packages' services would listen on
  # every interface (docker-registry on port 5000 with no authentication, prometheus on 9090).
  for svc in docker-registry prometheus; do
    if [[ " ${missing[*]} " == *" $svc "* ]] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
fi
if ! command -v bun >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq npm >/dev/null; }
  npm install -g --silent bun@1.4.5
fi
bun --version >/dev/null
