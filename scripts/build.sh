#!/usr/bin/env bash
# Builds the native parts (ffi/) and the single executable dist/onebox.
set -euo pipefail
cd "$(dirname "$0")/.."
make -C ffi -j"$(nproc)"
make -C guest/init -j"$(nproc)"
mkdir -p dist
bun build guest/agent/main.ts --target=bun --outfile dist/guest/agent.js
bun build --compile --minify-syntax src/main.ts --outfile dist/onebox
